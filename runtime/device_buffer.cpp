#include "runtime/device_buffer.hpp"

#include <utility>

#include "runtime/driver.hpp"

namespace fa2 {

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  driver::ensure_context();
  driver::check(driver::api().MemAlloc(&pointer_, bytes == 0 ? 1 : bytes), "cuMemAlloc");
}

DeviceBuffer::~DeviceBuffer() {
  if (pointer_ != 0) driver::api().MemFree(pointer_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : pointer_(std::exchange(other.pointer_, 0)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (pointer_ != 0) driver::api().MemFree(pointer_);
    pointer_ = std::exchange(other.pointer_, 0);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::fill16(unsigned short value) {
  driver::check(driver::api().MemsetD16(pointer_, value, bytes_ / 2), "cuMemsetD16");
}

void DeviceBuffer::fill32(unsigned value) {
  driver::check(driver::api().MemsetD32(pointer_, value, bytes_ / 4), "cuMemsetD32");
}

void DeviceBuffer::upload_bytes(const void* host) {
  driver::check(driver::api().MemcpyHtoD(pointer_, host, bytes_), "cuMemcpyHtoD");
}

void DeviceBuffer::download_bytes(void* host) const {
  driver::check(driver::api().MemcpyDtoH(host, pointer_, bytes_), "cuMemcpyDtoH");
}

}  // namespace fa2
