/// How a TLS connection is set up: identity (certificate chain and private key), trust roots,
/// verification, ALPN, protocol versions and ciphers.
///
/// A value type: build one with ``makeClientConfiguration()`` or
/// ``makeServerConfiguration(certificateChain:privateKey:)`` and change the properties you need.
/// The defaults follow RFC 9113 §9.2: TLS 1.2 or later (TLS 1.3 is preferred and negotiated when
/// both sides support it), no TLS-level compression, no renegotiation, and for TLS 1.2 only
/// ephemeral (ECDHE) key exchange with AEAD ciphers. ALPN offers `h2`.
///
/// ```swift
/// var client = NGHTTP2TLSConfiguration.makeClientConfiguration()
/// client.trustRoots = .file("/etc/my-ca.pem")
///
/// let server = NGHTTP2TLSConfiguration.makeServerConfiguration(
///     certificateChain: .file("/etc/server.pem"),
///     privateKey: .file("/etc/server.key"))
/// ```
public struct NGHTTP2TLSConfiguration: Sendable, Hashable {
    /// A certificate chain in PEM form: the leaf certificate first, then any intermediates.
    public enum CertificateChain: Sendable, Hashable {
        /// A PEM file holding the leaf certificate followed by any intermediate certificates.
        case file(String)
        /// PEM text (as bytes) holding the leaf certificate followed by any intermediate certificates.
        case pemBytes([UInt8])

        /// PEM text holding the leaf certificate followed by any intermediate certificates.
        public static func pem(_ text: String) -> CertificateChain { .pemBytes(Array(text.utf8)) }
    }

    /// A private key in PEM form (PKCS#8 `PRIVATE KEY`, or the traditional RSA/EC forms), unencrypted.
    public enum PrivateKey: Sendable, Hashable {
        /// A PEM file holding the key.
        case file(String)
        /// PEM text (as bytes) holding the key.
        case pemBytes([UInt8])

        /// PEM text holding the key.
        public static func pem(_ text: String) -> PrivateKey { .pemBytes(Array(text.utf8)) }
    }

    /// A certificate chain and the private key for its leaf: what a server presents (or a client,
    /// for mutual TLS).
    public struct Identity: Sendable, Hashable {
        /// The certificate chain, leaf first.
        public var certificateChain: CertificateChain
        /// The private key of the leaf certificate.
        public var privateKey: PrivateKey

        /// An identity from a certificate chain and the leaf's private key.
        public init(certificateChain: CertificateChain, privateKey: PrivateKey) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
        }
    }

    /// The certificate authorities a peer's certificate must chain up to.
    public enum TrustRoots: Sendable, Hashable {
        /// OpenSSL's default verify paths (on Debian `/etc/ssl/certs`, honouring `SSL_CERT_FILE` and
        /// `SSL_CERT_DIR`).
        case system
        /// One or more PEM files, each holding one or more CA certificates.
        case files([String])
        /// A directory of CA certificates named by subject hash (as made by `openssl rehash`).
        case directory(String)
        /// PEM text (as bytes) holding one or more CA certificates.
        case pemBytes([UInt8])

        /// A PEM file holding one or more CA certificates.
        public static func file(_ path: String) -> TrustRoots { .files([path]) }
        /// PEM text holding one or more CA certificates.
        public static func pem(_ text: String) -> TrustRoots { .pemBytes(Array(text.utf8)) }
    }

    /// How a client checks the server's certificate.
    public enum CertificateVerification: Sendable, Hashable {
        /// The certificate must chain to ``NGHTTP2TLSConfiguration/trustRoots``, be valid now, and name the
        /// host connected to (DNS name, or IP address for an IP literal) in its subject alternative names.
        case fullVerification
        /// The certificate must chain to the trust roots and be valid now, but any host name is accepted.
        case noHostnameVerification
        /// No check at all: any certificate, from anyone, is accepted.
        ///
        /// > Warning: Insecure. Anybody on the path can impersonate the server. Use only for tests
        /// > and diagnostics.
        case insecureNoVerification
    }

    /// Whether a server asks for, and how it checks, client certificates (mutual TLS).
    public enum ClientCertificateVerification: Sendable, Hashable {
        /// The server does not ask for a client certificate.
        case none
        /// The server asks for a certificate; a client may send none, but one it sends must verify
        /// against ``NGHTTP2TLSConfiguration/trustRoots``.
        case optional
        /// The client must send a certificate that verifies against ``NGHTTP2TLSConfiguration/trustRoots``;
        /// otherwise the handshake fails.
        case required
    }

    /// A TLS protocol version. Versions before TLS 1.2 are not supported (RFC 9113 §9.2).
    public enum TLSVersion: Int, Sendable, Hashable, Comparable, CustomStringConvertible {
        /// TLS 1.2 (RFC 5246).
        case tlsv12 = 0x0303
        /// TLS 1.3 (RFC 8446).
        case tlsv13 = 0x0304

        /// Orders versions from oldest to newest.
        public static func < (lhs: TLSVersion, rhs: TLSVersion) -> Bool { lhs.rawValue < rhs.rawValue }

        /// `"TLSv1.2"` or `"TLSv1.3"`, as OpenSSL names them.
        public var description: String {
            switch self {
            case .tlsv12: "TLSv1.2"
            case .tlsv13: "TLSv1.3"
            }
        }
    }

    /// The default TLS 1.2 cipher list: ephemeral ECDH key exchange with AEAD ciphers only, none of
    /// which is on the RFC 9113 §9.2.2 / Appendix A block list. TLS 1.3 suites are all AEAD and are
    /// OpenSSL's defaults.
    public static let defaultCipherList =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        + "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        + "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

    /// The certificate chain this side presents. Required on a server; on a client, set it (with
    /// ``privateKey``) to present a client certificate for mutual TLS.
    public var certificateChain: CertificateChain?

    /// The private key for the leaf of ``certificateChain``.
    public var privateKey: PrivateKey?

    /// The CAs that the peer's certificate must chain to: the server's certificate on a client, a
    /// client certificate on a server (when ``clientCertificateVerification`` is not `.none`).
    /// Defaults to ``TrustRoots/system``.
    public var trustRoots: TrustRoots = .system

    /// How a client checks the server's certificate. Defaults to ``CertificateVerification/fullVerification``.
    public var certificateVerification: CertificateVerification = .fullVerification

    /// Whether a server asks for client certificates. Defaults to ``ClientCertificateVerification/none``.
    public var clientCertificateVerification: ClientCertificateVerification = .none

    /// ALPN protocol names (RFC 7301), most preferred first: what a client offers, and what a server
    /// accepts (it picks the first of these that the client offered). Defaults to `["h2"]`.
    ///
    /// When a client offers protocols of which the server accepts none, the server fails the handshake
    /// with the `no_application_protocol` alert (RFC 7301 §3.2). When a client offers no ALPN at all, the
    /// handshake completes without a protocol and the connection handler reports
    /// ``TLSError/alpnMismatch(offered:negotiated:)``.
    public var applicationProtocols: [String] = ["h2"]

    /// The oldest TLS version accepted. Defaults to ``TLSVersion/tlsv12`` (RFC 9113 §9.2).
    public var minimumTLSVersion: TLSVersion = .tlsv12

    /// The newest TLS version used, or `nil` for the newest available (TLS 1.3).
    public var maximumTLSVersion: TLSVersion? = nil

    /// The OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are not affected). Defaults to
    /// ``defaultCipherList`` (ECDHE + AEAD only, RFC 9113 §9.2.2).
    public var cipherList: String = NGHTTP2TLSConfiguration.defaultCipherList

    /// Client only: the host name sent in SNI and checked against the server's certificate, instead
    /// of the host connected to. An IP literal is checked against the certificate's IP addresses and
    /// is not sent as SNI (RFC 6066 §3).
    public var serverName: String? = nil

    /// Server only: certificates chosen by the host name a client sends in SNI. Keys are host names
    /// (matched case-insensitively) or wildcards of the form `*.example.org` (one label). A client
    /// that sends no SNI, or a name not listed, gets ``certificateChain``.
    public var certificatesByServerName: [String: Identity] = [:]

    /// A configuration with every default and no identity. Prefer ``makeClientConfiguration()`` or
    /// ``makeServerConfiguration(certificateChain:privateKey:)``.
    public init() {}

    /// A client configuration: verifies the server against the system trust roots and its host name,
    /// offers ALPN `h2`, TLS 1.2 or 1.3.
    public static func makeClientConfiguration() -> NGHTTP2TLSConfiguration {
        NGHTTP2TLSConfiguration()
    }

    /// A server configuration presenting `certificateChain` with `privateKey`: accepts ALPN `h2`,
    /// TLS 1.2 or 1.3, and asks for no client certificate.
    ///
    /// - Parameters:
    ///   - certificateChain: The server's certificate, followed by any intermediates.
    ///   - privateKey: The private key of the server's certificate.
    public static func makeServerConfiguration(
        certificateChain: CertificateChain,
        privateKey: PrivateKey
    ) -> NGHTTP2TLSConfiguration {
        var configuration = NGHTTP2TLSConfiguration()
        configuration.certificateChain = certificateChain
        configuration.privateKey = privateKey
        return configuration
    }
}
