#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
// The system's OpenSSL 3 (libssl-dev). Macros that ClangImporter cannot import get static inline wrappers here.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#endif
