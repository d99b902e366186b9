/* The C ABI from C: the header compiled as C99, the library's version, and a status with its message
 * for a call that needs no GPU (a NULL argument struct). */
#include <fa2jit/fa2jit.h>

#include <stdio.h>

int main(void) {
  fa2_forward_args args;
  int status;
  fa2_forward_args_init(&args);
  if (fa2_abi_version() != FA2_ABI_VERSION || fa2_forward_args_size() != (int)sizeof args) {
    printf("fa2jit.h (ABI %d) does not match the library (ABI %d)\n", FA2_ABI_VERSION, fa2_abi_version());
    return 1;
  }
  printf("fa2jit %s from C (ABI %d)\n", fa2_version(), fa2_abi_version());
  status = fa2_forward(NULL, NULL);
  printf("fa2_forward(NULL): %s: %s\n", fa2_status_name(status), fa2_last_error());
  return status == FA2_ERROR_ARGUMENT ? 0 : 1;
}
