// abi.cpp — what the library says about its own C ABI (vlp_abi), so that the Go side can refuse a
// libvlptorch.so built from other sources than the binary that loads it.
//
// It includes only the C header, nothing of LibTorch, and nothing in it can throw: the Go side
// calls it before any other symbol, on a library it does not yet trust. Built alone with
// -DVLP_ABI_VERSION=n it makes a stand-in library that reports version n (the loader's tests).
#include "vlp_torch.h"

extern "C" {

char* vlp_abi(int64_t* version, int64_t* sizes, int64_t cap, int64_t* ntables) {
  int64_t tables[VLP_TABLE_COUNT];
  tables[VLP_TABLE_DTYPE] = VLP_DTYPE_COUNT;
  tables[VLP_TABLE_SHAPE] = VLP_SHAPE_COUNT;
  tables[VLP_TABLE_UNARY] = VLP_U_COUNT;
  tables[VLP_TABLE_BINARY] = VLP_B_COUNT;
  tables[VLP_TABLE_REDUCE] = VLP_R_COUNT;
  *version = VLP_ABI_VERSION;
  for (int64_t i = 0; i < cap && i < VLP_TABLE_COUNT; i++) sizes[i] = tables[i];
  *ntables = VLP_TABLE_COUNT;
  return nullptr;
}

}  // extern "C"
