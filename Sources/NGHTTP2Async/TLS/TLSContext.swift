import COpenSSL
import NIOCore

/// Owns one OpenSSL `SSL_CTX`, built from a ``NGHTTP2TLSConfiguration``: identity, trust roots, protocol
/// versions, ciphers, options and the ALPN / SNI callbacks. Connections (`SSL`) are made from it by
/// ``TLSHandler``.
///
/// Building a context loads files and parses PEM, so build one per client or server and share it
/// across connections; do not build one per connection on an event loop.
final class TLSContext: @unchecked Sendable {  // the SSL_CTX is fully configured in init and never mutated afterwards; OpenSSL locks what SSL_new shares (reference counts, session cache), and therefore Sendable
    /// The configuration this context was built from.
    let configuration: NGHTTP2TLSConfiguration

    /// The `SSL_CTX *`, freed in deinit.
    private let context: OpaquePointer

    /// The ALPN protocol list in wire format (length-prefixed names). Allocated once so that the
    /// server's ALPN callback can point OpenSSL into it (the selected protocol must outlive the callback).
    private let alpnWire: UnsafeMutableBufferPointer<UInt8>

    /// Server only: contexts for ``NGHTTP2TLSConfiguration/certificatesByServerName``, as lower-cased
    /// (pattern, context) pairs. Each is a full context with the same settings and another identity.
    private let serverNameContexts: [(pattern: String, context: TLSContext)]

    /// Builds the `SSL_CTX` for `configuration`.
    ///
    /// - Throws: ``TLSError`` with OpenSSL's reason when a certificate, key or trust-root source
    ///   cannot be loaded, the key does not match the certificate, or a setting is rejected.
    init(configuration: NGHTTP2TLSConfiguration) throws {
        ERR_clear_error()
        let wire = try TLSContext.alpnWireFormat(configuration.applicationProtocols)
        let context = try TLSContext.makeContext(configuration)
        var children: [(pattern: String, context: TLSContext)] = []
        do {
            for (name, identity) in configuration.certificatesByServerName.sorted(by: { $0.key < $1.key }) {
                var childConfiguration = configuration
                childConfiguration.certificateChain = identity.certificateChain
                childConfiguration.privateKey = identity.privateKey
                childConfiguration.certificatesByServerName = [:]
                children.append((name.lowercased(), try TLSContext(configuration: childConfiguration)))
            }
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        let alpnWire = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(wire.count, 1))
        _ = alpnWire.initialize(from: wire)

        self.configuration = configuration
        self.context = context
        self.alpnWire = alpnWire
        self.serverNameContexts = children

        // Callbacks get this object, unretained: every SSL made from this context is owned by a
        // TLSHandler that keeps the context alive.
        let this = Unmanaged.passUnretained(self).toOpaque()
        if !wire.isEmpty {
            // Client side: the list offered. Returns 0 on success (unlike most OpenSSL calls).
            let status = SSL_CTX_set_alpn_protos(context, alpnWire.baseAddress, UInt32(wire.count))
            precondition(status == 0, "SSL_CTX_set_alpn_protos failed on a validated list")
            // Server side: choose from what the client offers.
            SSL_CTX_set_alpn_select_cb(context, alpnSelectCallback, this)
        }
        if !children.isEmpty {
            _ = copenssl_SSL_CTX_set_tlsext_servername_callback(context, serverNameCallback)
            _ = copenssl_SSL_CTX_set_tlsext_servername_arg(context, this)
        }
    }

    deinit {
        SSL_CTX_free(context)
        alpnWire.deallocate()
    }

    /// The protocols a server accepts, most preferred first (the configuration's ALPN list).
    var applicationProtocols: [String] { configuration.applicationProtocols }

    // MARK: - Connections

    /// A new `SSL *` in client or server mode with verification set for `role`. The caller owns it
    /// (free with `SSL_free`).
    ///
    /// - Parameter serverHostname: Client only: the host connected to; ``NGHTTP2TLSConfiguration/serverName``
    ///   overrides it. A DNS name is sent as SNI and (with full verification) checked against the
    ///   certificate; an IP literal is checked against the certificate's IP addresses.
    /// - Throws: ``TLSError/invalidConfiguration(reason:)`` when full verification has no name to
    ///   check, or a server has no certificate.
    func makeSSL(role: TLSHandler.Role, serverHostname: String?) throws -> OpaquePointer {
        ERR_clear_error()
        guard let ssl = SSL_new(context) else {
            throw TLSError.invalidConfiguration(reason: TLSError.drainErrorQueue(fallback: "SSL_new failed"))
        }
        do {
            switch role {
            case .client:
                try configureClient(ssl, serverHostname: serverHostname)
            case .server:
                guard configuration.certificateChain != nil else {
                    throw TLSError.invalidConfiguration(reason: "a server needs a certificate chain and private key")
                }
                SSL_set_accept_state(ssl)
                switch configuration.clientCertificateVerification {
                case .none:
                    SSL_set_verify(ssl, SSL_VERIFY_NONE, nil)
                case .optional:
                    SSL_set_verify(ssl, SSL_VERIFY_PEER, nil)
                case .required:
                    SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
                }
            }
        } catch {
            SSL_free(ssl)
            throw error
        }
        return ssl
    }

    private func configureClient(_ ssl: OpaquePointer, serverHostname: String?) throws {
        SSL_set_connect_state(ssl)
        let verification = configuration.certificateVerification
        SSL_set_verify(ssl, verification == .insecureNoVerification ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nil)
        var name = configuration.serverName ?? serverHostname
        if let bracketed = name, bracketed.hasPrefix("["), bracketed.hasSuffix("]") {
            name = String(bracketed.dropFirst().dropLast())
        }
        guard let name, !name.isEmpty else {
            if verification == .fullVerification {
                throw TLSError.invalidConfiguration(
                    reason: "full certificate verification needs the server's host name (serverHostname or serverName)")
            }
            return
        }
        if (try? SocketAddress(ipAddress: name, port: 0)) != nil {
            // An IP literal: never sent as SNI (RFC 6066 §3); checked against the certificate's IP SANs.
            if verification == .fullVerification, X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1 {
                throw TLSError.invalidConfiguration(
                    reason: TLSError.drainErrorQueue(fallback: "cannot verify IP address \(name)"))
            }
        } else {
            if copenssl_SSL_set_tlsext_host_name(ssl, name) != 1 {
                throw TLSError.invalidConfiguration(
                    reason: TLSError.drainErrorQueue(fallback: "invalid server name \(name)"))
            }
            if verification == .fullVerification {
                SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
                if SSL_set1_host(ssl, name) != 1 {
                    throw TLSError.invalidConfiguration(
                        reason: TLSError.drainErrorQueue(fallback: "invalid server name \(name)"))
                }
            }
        }
    }

    // MARK: - SNI and ALPN (called from OpenSSL during a server handshake)

    /// The context whose identity serves `serverName` (exact names first, then `*.` wildcards of one label).
    fileprivate func context(forServerName serverName: String) -> TLSContext? {
        let name = serverName.lowercased()
        if let exact = serverNameContexts.first(where: { $0.pattern == name }) { return exact.context }
        for entry in serverNameContexts where entry.pattern.hasPrefix("*.") {
            let suffix = entry.pattern.dropFirst(1)  // ".example.org"
            if name.hasSuffix(suffix) {
                let label = name.dropLast(suffix.count)
                if !label.isEmpty, !label.contains(".") { return entry.context }
            }
        }
        return nil
    }

    /// Switches `ssl` to the context for its SNI name, if there is one.
    fileprivate func selectServerName(_ ssl: OpaquePointer) {
        guard let pointer = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return }
        if let child = context(forServerName: String(cString: pointer)) {
            _ = SSL_set_SSL_CTX(ssl, child.context)
        }
    }

    /// Picks the first of our protocols that the client offered; points `out` into ``alpnWire``.
    fileprivate func selectProtocol(
        offered: UnsafeBufferPointer<UInt8>,
        out: UnsafeMutablePointer<UnsafePointer<UInt8>?>,
        outLength: UnsafeMutablePointer<UInt8>
    ) -> (selected: Bool, offered: [String]) {
        // The client's list: length-prefixed names.
        var offeredRanges: [Range<Int>] = []
        var index = 0
        while index < offered.count {
            let length = Int(offered[index])
            let start = index + 1
            guard length > 0, start + length <= offered.count else { return (false, []) }
            offeredRanges.append(start..<(start + length))
            index = start + length
        }
        let offeredNames = offeredRanges.map { String(decoding: UnsafeBufferPointer(rebasing: offered[$0]), as: UTF8.self) }
        var ours = 0
        while ours < alpnWire.count {
            let length = Int(alpnWire[ours])
            let name = UnsafeBufferPointer(rebasing: alpnWire[(ours + 1)..<(ours + 1 + length)])
            if offeredRanges.contains(where: { $0.count == length && offered[$0].elementsEqual(name) }) {
                out.pointee = UnsafePointer(alpnWire.baseAddress! + ours + 1)
                outLength.pointee = UInt8(length)
                return (true, offeredNames)
            }
            ours += 1 + length
        }
        return (false, offeredNames)
    }

    // MARK: - Building the SSL_CTX

    /// `["h2", "http/1.1"]` → `[2, h, 2, 8, h, t, t, p, /, 1, ., 1]` (RFC 7301 §3.1).
    private static func alpnWireFormat(_ protocols: [String]) throws -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else {
                throw TLSError.invalidConfiguration(reason: "ALPN protocol name must be 1 to 255 bytes: \"\(name)\"")
            }
            wire.append(UInt8(bytes.count))
            wire.append(contentsOf: bytes)
        }
        guard wire.count <= 0xFFFF else { throw TLSError.invalidConfiguration(reason: "ALPN protocol list too long") }
        return wire
    }

    /// A configured `SSL_CTX` (freed again if configuration fails).
    private static func makeContext(_ configuration: NGHTTP2TLSConfiguration) throws -> OpaquePointer {
        guard let context = SSL_CTX_new(TLS_method()) else {
            throw TLSError.invalidConfiguration(reason: TLSError.drainErrorQueue(fallback: "SSL_CTX_new failed"))
        }
        do {
            try configure(context, configuration)
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        return context
    }

    private static func configure(_ context: OpaquePointer, _ configuration: NGHTTP2TLSConfiguration) throws {
        func fail(_ what: String) -> TLSError {
            .invalidConfiguration(reason: TLSError.drainErrorQueue(fallback: what))
        }
        // Versions: never below TLS 1.2 (RFC 9113 §9.2); TLS 1.3 preferred when both sides have it.
        if let maximum = configuration.maximumTLSVersion, maximum < configuration.minimumTLSVersion {
            throw TLSError.invalidConfiguration(reason: "maximumTLSVersion is older than minimumTLSVersion")
        }
        guard copenssl_SSL_CTX_set_min_proto_version(context, Int32(configuration.minimumTLSVersion.rawValue)) == 1 else {
            throw fail("cannot set the minimum TLS version")
        }
        if let maximum = configuration.maximumTLSVersion {
            guard copenssl_SSL_CTX_set_max_proto_version(context, Int32(maximum.rawValue)) == 1 else {
                throw fail("cannot set the maximum TLS version")
            }
        }
        // RFC 9113 §9.2.1: no TLS compression, no renegotiation. The server picks the cipher.
        _ = SSL_CTX_set_options(
            context,
            copenssl_SSL_OP_NO_COMPRESSION() | copenssl_SSL_OP_NO_RENEGOTIATION()
                | copenssl_SSL_OP_CIPHER_SERVER_PREFERENCE())
        // An idle connection gives its record buffers back (about 11 KiB of the 60 KiB a server kept per idle TLS
        // connection); with data flowing, OpenSSL keeps them, and requests/s and bulk MB/s did not change.
        _ = copenssl_SSL_CTX_set_mode(context, Int(SSL_MODE_RELEASE_BUFFERS))
        // RFC 9113 §9.2.2: TLS 1.2 with ephemeral key exchange and AEAD only (the cipher list).
        guard SSL_CTX_set_cipher_list(context, configuration.cipherList) == 1 else {
            throw fail("the cipher list selects no cipher: \(configuration.cipherList)")
        }
        // Resumed sessions with client certificates need a session id context.
        let sessionContext = Array("swift-nghttp2".utf8)
        _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
        // Never prompt on a terminal for a key's pass phrase: encrypted keys simply fail to load.
        SSL_CTX_set_default_passwd_cb(context, noPassword)

        switch (configuration.certificateChain, configuration.privateKey) {
        case (let chain?, let key?):
            try loadCertificateChain(chain, into: context)
            try loadPrivateKey(key, into: context)
        case (nil, nil):
            break
        case (_?, nil):
            throw TLSError.invalidConfiguration(reason: "a certificate chain needs its private key")
        case (nil, _?):
            throw TLSError.invalidConfiguration(reason: "a private key needs its certificate chain")
        }
        try loadTrustRoots(configuration.trustRoots, into: context)
    }

    private static func loadCertificateChain(_ chain: NGHTTP2TLSConfiguration.CertificateChain, into context: OpaquePointer) throws {
        switch chain {
        case .file(let path):
            guard SSL_CTX_use_certificate_chain_file(context, path) == 1 else {
                throw TLSError.invalidCertificate(
                    source: path, reason: TLSError.drainErrorQueue(fallback: "cannot load the certificate chain"))
            }
        case .pemBytes(let bytes):
            let source = "PEM bytes"
            try withMemoryBIO(bytes) { bio in
                guard let leaf = PEM_read_bio_X509_AUX(bio, nil, noPassword, nil) else {
                    throw TLSError.invalidCertificate(
                        source: source, reason: TLSError.drainErrorQueue(fallback: "no certificate found"))
                }
                defer { X509_free(leaf) }
                guard SSL_CTX_use_certificate(context, leaf) == 1 else {
                    throw TLSError.invalidCertificate(
                        source: source, reason: TLSError.drainErrorQueue(fallback: "cannot use the certificate"))
                }
                for intermediate in readCertificates(bio) {
                    defer { X509_free(intermediate) }
                    guard copenssl_SSL_CTX_add1_chain_cert(context, intermediate) == 1 else {
                        throw TLSError.invalidCertificate(
                            source: source, reason: TLSError.drainErrorQueue(fallback: "cannot add a chain certificate"))
                    }
                }
            }
        }
    }

    private static func loadPrivateKey(_ key: NGHTTP2TLSConfiguration.PrivateKey, into context: OpaquePointer) throws {
        let source: String
        switch key {
        case .file(let path):
            source = path
            guard SSL_CTX_use_PrivateKey_file(context, path, SSL_FILETYPE_PEM) == 1 else {
                throw TLSError.invalidPrivateKey(
                    source: path, reason: TLSError.drainErrorQueue(fallback: "cannot load the private key"))
            }
        case .pemBytes(let bytes):
            source = "PEM bytes"
            try withMemoryBIO(bytes) { bio in
                guard let pkey = PEM_read_bio_PrivateKey(bio, nil, noPassword, nil) else {
                    throw TLSError.invalidPrivateKey(
                        source: source, reason: TLSError.drainErrorQueue(fallback: "no private key found"))
                }
                defer { EVP_PKEY_free(pkey) }
                guard SSL_CTX_use_PrivateKey(context, pkey) == 1 else {
                    throw TLSError.invalidPrivateKey(
                        source: source, reason: TLSError.drainErrorQueue(fallback: "cannot use the private key"))
                }
            }
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw TLSError.invalidPrivateKey(
                source: source, reason: TLSError.drainErrorQueue(fallback: "the key does not match the certificate"))
        }
    }

    private static func loadTrustRoots(_ roots: NGHTTP2TLSConfiguration.TrustRoots, into context: OpaquePointer) throws {
        switch roots {
        case .system:
            guard SSL_CTX_set_default_verify_paths(context) == 1 else {
                throw TLSError.invalidTrustRoots(
                    source: "system", reason: TLSError.drainErrorQueue(fallback: "cannot load the default verify paths"))
            }
        case .files(let paths):
            for path in paths {
                guard SSL_CTX_load_verify_locations(context, path, nil) == 1 else {
                    throw TLSError.invalidTrustRoots(
                        source: path, reason: TLSError.drainErrorQueue(fallback: "cannot load CA certificates"))
                }
            }
        case .directory(let path):
            guard SSL_CTX_load_verify_locations(context, nil, path) == 1 else {
                throw TLSError.invalidTrustRoots(
                    source: path, reason: TLSError.drainErrorQueue(fallback: "cannot use the CA directory"))
            }
        case .pemBytes(let bytes):
            let store = SSL_CTX_get_cert_store(context)
            try withMemoryBIO(bytes) { bio in
                let certificates = readCertificates(bio)
                defer { certificates.forEach { X509_free($0) } }
                guard !certificates.isEmpty else {
                    throw TLSError.invalidTrustRoots(source: "PEM bytes", reason: "no certificate found")
                }
                for certificate in certificates where X509_STORE_add_cert(store, certificate) != 1 {
                    throw TLSError.invalidTrustRoots(
                        source: "PEM bytes", reason: TLSError.drainErrorQueue(fallback: "cannot add a CA certificate"))
                }
            }
        }
    }

    /// Every further certificate in `bio` (caller frees each); the "no start line" at the end is cleared.
    private static func readCertificates(_ bio: OpaquePointer) -> [OpaquePointer] {
        var certificates: [OpaquePointer] = []
        while let certificate = PEM_read_bio_X509(bio, nil, noPassword, nil) {
            certificates.append(certificate)
        }
        ERR_clear_error()
        return certificates
    }

    /// Runs `body` with a read-only memory BIO over `bytes` (freed afterwards).
    private static func withMemoryBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) throws -> T) throws -> T {
        try bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else {
                throw TLSError.invalidConfiguration(reason: TLSError.drainErrorQueue(fallback: "BIO_new_mem_buf failed"))
            }
            defer { BIO_free(bio) }
            return try body(bio)
        }
    }
}

// MARK: - C callbacks (file-level functions; the owner comes back through Unmanaged)

/// `pem_password_cb` that supplies no pass phrase (so OpenSSL never prompts on a terminal).
private func noPassword(
    _ buffer: UnsafeMutablePointer<CChar>?, _ size: Int32, _ rwflag: Int32, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    0
}

/// The server's ALPN select callback: the first of our protocols that the client offered. When
/// there is none, the handshake fails with the `no_application_protocol` alert (RFC 7301 §3.2) and
/// the handler reports ``TLSError/alpnMismatch(offered:negotiated:)`` with the client's list.
private func alpnSelectCallback(
    ssl: OpaquePointer?,
    out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    outLength: UnsafeMutablePointer<UInt8>?,
    input: UnsafePointer<UInt8>?,
    inputLength: UInt32,
    arg: UnsafeMutableRawPointer?
) -> Int32 {
    guard let ssl, let out, let outLength, let input, let arg else { return SSL_TLSEXT_ERR_NOACK }
    let context = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
    let (selected, offered) = context.selectProtocol(
        offered: UnsafeBufferPointer(start: input, count: Int(inputLength)), out: out, outLength: outLength)
    let handler = TLSHandler.from(ssl: ssl)
    handler?.clientOfferedProtocols = offered
    if selected { return SSL_TLSEXT_ERR_OK }
    handler?.rejectedApplicationProtocols = true
    return SSL_TLSEXT_ERR_ALERT_FATAL
}

/// The server's SNI callback: switch to the identity configured for the name the client sent.
private func serverNameCallback(
    ssl: OpaquePointer?, alert: UnsafeMutablePointer<Int32>?, arg: UnsafeMutableRawPointer?
) -> Int32 {
    guard let ssl, let arg else { return SSL_TLSEXT_ERR_NOACK }
    Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue().selectServerName(ssl)
    return SSL_TLSEXT_ERR_OK
}
