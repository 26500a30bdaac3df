import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure of the TLS layer (OpenSSL), with OpenSSL's own reason text.
///
/// Every case that comes from OpenSSL carries the reason string from OpenSSL's error queue
/// (`ERR_reason_error_string`) or, for certificate verification, from
/// `X509_verify_cert_error_string(SSL_get_verify_result)`: for example `"hostname mismatch"`,
/// `"certificate has expired"` or `"unable to get local issuer certificate"`.
public enum TLSError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The TLS handshake failed for a reason other than certificate verification.
    ///
    /// `reason` is OpenSSL's text, for example `"wrong version number"`, `"unsupported protocol"`,
    /// `"no shared cipher"`, `"peer did not return a certificate"` or an alert received from the peer
    /// such as `"tlsv1 alert no application protocol"`.
    case handshakeFailed(reason: String)

    /// The peer's certificate did not verify.
    ///
    /// `reason` is `X509_verify_cert_error_string` of the verification result, for example
    /// `"hostname mismatch"`, `"certificate has expired"`, `"unable to get local issuer certificate"`
    /// or `"self-signed certificate"`.
    case certificateVerifyFailed(reason: String)

    /// ALPN (RFC 7301) did not select the protocol the connection requires (`h2` unless configured
    /// otherwise).
    ///
    /// - `offered`: the protocols the client offered (on a client, its own list; on a server, the
    ///   list the client sent, empty when it sent no ALPN extension).
    /// - `negotiated`: the protocol selected in the handshake, or `nil` when none was.
    case alpnMismatch(offered: [String], negotiated: String?)

    /// The handshake did not complete within the configured time; the connection was closed.
    case handshakeTimeout(Duration)

    /// The peer closed the TCP connection without finishing what it started: during the handshake
    /// (`duringHandshake == true`) or in the middle of a TLS record.
    case unexpectedEOF(duringHandshake: Bool)

    /// After the handshake, a record could not be processed: a fatal alert from the peer
    /// (for example `"tlsv13 alert certificate required"`), a bad record MAC, or a similar protocol error.
    case connectionFailed(reason: String)

    /// A certificate (chain) could not be loaded. `source` is the file path, or `"PEM bytes"`.
    case invalidCertificate(source: String, reason: String)

    /// A private key could not be loaded or does not match its certificate (`"key values mismatch"`).
    /// `source` is the file path, or `"PEM bytes"`.
    case invalidPrivateKey(source: String, reason: String)

    /// Trust roots (CA certificates) could not be loaded. `source` is the file or directory path, or
    /// `"PEM bytes"`.
    case invalidTrustRoots(source: String, reason: String)

    /// The configuration was rejected by OpenSSL or is inconsistent (for example an empty or
    /// over-long ALPN protocol name, a cipher list that selects no cipher, or a server without a
    /// certificate).
    case invalidConfiguration(reason: String)

    /// A human-readable description that includes OpenSSL's reason.
    public var description: String {
        switch self {
        case .handshakeFailed(let reason):
            return "TLS handshake failed: \(reason)"
        case .certificateVerifyFailed(let reason):
            return "certificate verify failed: \(reason)"
        case .alpnMismatch(let offered, let negotiated):
            let list = offered.isEmpty ? "none" : offered.joined(separator: ", ")
            return "TLS ALPN mismatch: offered \(list); negotiated \(negotiated ?? "none")"
        case .handshakeTimeout(let duration):
            return "TLS handshake timed out after \(duration)"
        case .unexpectedEOF(let duringHandshake):
            return duringHandshake
                ? "TLS peer closed the connection during the handshake"
                : "TLS peer closed the connection in the middle of a record"
        case .connectionFailed(let reason):
            return "TLS connection failed: \(reason)"
        case .invalidCertificate(let source, let reason):
            return "invalid certificate (\(source)): \(reason)"
        case .invalidPrivateKey(let source, let reason):
            return "invalid private key (\(source)): \(reason)"
        case .invalidTrustRoots(let source, let reason):
            return "invalid trust roots (\(source)): \(reason)"
        case .invalidConfiguration(let reason):
            return "invalid TLS configuration: \(reason)"
        }
    }
}

// MARK: - OpenSSL's error queue

extension TLSError {
    /// Drains this thread's OpenSSL error queue and returns its reason strings joined by `": "`, most
    /// specific (earliest) first, or `fallback` when the queue is empty.
    static func drainErrorQueue(fallback: String) -> String {
        var reasons: [String] = []
        while true {
            var data: UnsafePointer<CChar>? = nil
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { break }
            var reason: String
            if code & systemErrorFlag != 0 {
                // ERR_SYSTEM_ERROR: the low bits are an errno value.
                reason = String(cString: strerror(Int32(truncatingIfNeeded: code & ~systemErrorFlag)))
            } else if let text = ERR_reason_error_string(code) {
                reason = String(cString: text)
            } else if let library = ERR_lib_error_string(code) {
                reason = "\(String(cString: library)) error"
            } else {
                reason = "unknown OpenSSL error"
            }
            if let data, flags & ERR_TXT_STRING != 0 {
                let detail = String(cString: data)
                if !detail.isEmpty { reason += " (\(detail))" }
            }
            if !reasons.contains(reason) { reasons.append(reason) }
        }
        // "system lib", "PEM lib", "ASN1 lib"…: a layer passing an error up, which says nothing new.
        let specific = reasons.filter { !$0.hasSuffix(" lib") }
        let chosen = specific.isEmpty ? reasons : specific
        return chosen.isEmpty ? fallback : chosen.joined(separator: ": ")
    }

    /// `ERR_SYSTEM_FLAG` (`INT_MAX + 1`, a macro with a cast that Swift does not import).
    private static let systemErrorFlag: UInt = 0x8000_0000

    /// The text of an X.509 verification result (`SSL_get_verify_result`), for example
    /// `"certificate has expired"`.
    static func verifyResultReason(_ result: Int) -> String {
        guard let text = X509_verify_cert_error_string(result) else { return "certificate verification failed" }
        return String(cString: text)
    }
}
