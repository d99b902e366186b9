// DeviceBuffer: device memory owned by one object (cuMemAlloc / cuMemFree), for checks, tests and
// benchmarks. The library's forward() itself allocates nothing.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <vector>

namespace fa2 {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return reinterpret_cast<void*>(pointer_); }
  CUdeviceptr address() const { return pointer_; }
  std::size_t bytes() const { return bytes_; }

  // Fills every byte pattern of `value` (16 or 32 bits wide), e.g. NaN poison.
  void fill16(unsigned short value);
  void fill32(unsigned value);

  // Copies bytes() bytes from `host` into the buffer.
  void upload_bytes(const void* host);

  template <class T>
  std::vector<T> download() const {
    std::vector<T> host(bytes_ / sizeof(T));
    download_bytes(host.data());
    return host;
  }

 private:
  void download_bytes(void* host) const;

  CUdeviceptr pointer_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace fa2
