#ifndef CNGHTTP2_SHIM_H
#define CNGHTTP2_SHIM_H
// The system's libnghttp2 (1.52 or later). Nothing else: every symbol Swift needs imports as is;
// the five numeric macros ClangImporter skips are Swift constants in the NGHTTP2 module.
#include <nghttp2/nghttp2.h>
#endif
