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
/// An extensible error: new codes can be added without breaking code that matches on it. Match on
/// ``code`` and read the context properties that the code documents:
///
/// ```swift
/// do {
///     let client = try await ClientSession.connect(to: "https://example.com")
/// } catch let error as TLSError where error.code == .certificateVerifyFailed {
///     print("the server's certificate did not verify: \(error.reason!)")
/// }
/// ```
///
/// Every error that comes from OpenSSL carries the reason string from OpenSSL's error queue
/// (`ERR_reason_error_string`) or, for certificate verification, from
/// `X509_verify_cert_error_string(SSL_get_verify_result)`: for example `"hostname mismatch"`,
/// `"certificate has expired"` or `"unable to get local issuer certificate"`.
///
/// Two errors are equal when their code and every context property are equal.
public struct TLSError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong. The context properties that apply are listed on each code.
    public let code: Code

    /// OpenSSL's reason text; set for every code except ``Code/alpnMismatch``, ``Code/handshakeTimeout`` and
    /// ``Code/unexpectedEOF``, where it is `nil`.
    public let reason: String?

    /// For ``Code/invalidCertificate``, ``Code/invalidPrivateKey`` and ``Code/invalidTrustRoots``: where the
    /// material came from (a file or directory path, `"PEM bytes"` or `"system"`); `nil` otherwise.
    public let source: String?

    /// For ``Code/alpnMismatch``: the protocols the client offered (on a client, its own list; on a server, the
    /// list the client sent, empty when it sent no ALPN extension); `nil` otherwise.
    public let offered: [String]?

    /// For ``Code/alpnMismatch``: the protocol selected in the handshake, or `nil` when none was. Always `nil`
    /// for other codes.
    public let negotiated: String?

    /// For ``Code/handshakeTimeout``: the time the handshake was given; `nil` otherwise.
    public let timeout: Duration?

    /// For ``Code/unexpectedEOF``: whether the peer closed during the handshake (`true`) or in the middle of a
    /// record (`false`); `nil` for other codes.
    public let duringHandshake: Bool?

    private init(
        _ code: Code,
        reason: String? = nil,
        source: String? = nil,
        offered: [String]? = nil,
        negotiated: String? = nil,
        timeout: Duration? = nil,
        duringHandshake: Bool? = nil
    ) {
        self.code = code
        self.reason = reason
        self.source = source
        self.offered = offered
        self.negotiated = negotiated
        self.timeout = timeout
        self.duringHandshake = duringHandshake
    }
}

// MARK: - Codes

extension TLSError {
    /// The kind of a ``TLSError``. More codes may be added in later versions: a `switch` over codes is not
    /// possible, compare with `==` instead.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Hashable, Sendable {
            case handshakeFailed, certificateVerifyFailed, alpnMismatch, handshakeTimeout, unexpectedEOF
            case connectionFailed, invalidCertificate, invalidPrivateKey, invalidTrustRoots, invalidConfiguration
        }

        private let backing: Backing

        private init(_ backing: Backing) { self.backing = backing }

        /// The handshake failed for a reason other than certificate verification.
        /// See ``TLSError/handshakeFailed(reason:)``.
        public static let handshakeFailed = Code(.handshakeFailed)
        /// The peer's certificate did not verify. See ``TLSError/certificateVerifyFailed(reason:)``.
        public static let certificateVerifyFailed = Code(.certificateVerifyFailed)
        /// ALPN did not select the required protocol. See ``TLSError/alpnMismatch(offered:negotiated:)``.
        public static let alpnMismatch = Code(.alpnMismatch)
        /// The handshake did not complete in time. See ``TLSError/handshakeTimeout(_:)``.
        public static let handshakeTimeout = Code(.handshakeTimeout)
        /// The peer closed the TCP connection too early. See ``TLSError/unexpectedEOF(duringHandshake:)``.
        public static let unexpectedEOF = Code(.unexpectedEOF)
        /// A record could not be processed after the handshake. See ``TLSError/connectionFailed(reason:)``.
        public static let connectionFailed = Code(.connectionFailed)
        /// A certificate (chain) could not be loaded. See ``TLSError/invalidCertificate(source:reason:)``.
        public static let invalidCertificate = Code(.invalidCertificate)
        /// A private key could not be loaded or used. See ``TLSError/invalidPrivateKey(source:reason:)``.
        public static let invalidPrivateKey = Code(.invalidPrivateKey)
        /// Trust roots could not be loaded. See ``TLSError/invalidTrustRoots(source:reason:)``.
        public static let invalidTrustRoots = Code(.invalidTrustRoots)
        /// The configuration was rejected. See ``TLSError/invalidConfiguration(reason:)``.
        public static let invalidConfiguration = Code(.invalidConfiguration)

        /// The code's name, for example `"certificateVerifyFailed"`.
        public var description: String { backing.rawValue }

        /// Whether `error` is a ``TLSError`` with this code, so that a code can be a `catch` or `case`
        /// pattern: `catch TLSError.Code.certificateVerifyFailed { … }`.
        public static func ~= (pattern: Code, error: any Error) -> Bool {
            (error as? TLSError)?.code == pattern
        }
    }
}

// MARK: - Errors

extension TLSError {
    /// The TLS handshake failed for a reason other than certificate verification.
    ///
    /// `reason` is OpenSSL's text, for example `"wrong version number"`, `"unsupported protocol"`,
    /// `"no shared cipher"`, `"peer did not return a certificate"` or an alert received from the peer
    /// such as `"tlsv1 alert no application protocol"`.
    public static func handshakeFailed(reason: String) -> TLSError {
        TLSError(.handshakeFailed, reason: reason)
    }

    /// The peer's certificate did not verify.
    ///
    /// `reason` is `X509_verify_cert_error_string` of the verification result, for example
    /// `"hostname mismatch"`, `"certificate has expired"`, `"unable to get local issuer certificate"`
    /// or `"self-signed certificate"`.
    public static func certificateVerifyFailed(reason: String) -> TLSError {
        TLSError(.certificateVerifyFailed, reason: reason)
    }

    /// ALPN (RFC 7301) did not select the protocol the connection requires (`h2` unless configured
    /// otherwise).
    ///
    /// - `offered`: the protocols the client offered (on a client, its own list; on a server, the
    ///   list the client sent, empty when it sent no ALPN extension).
    /// - `negotiated`: the protocol selected in the handshake, or `nil` when none was.
    public static func alpnMismatch(offered: [String], negotiated: String?) -> TLSError {
        TLSError(.alpnMismatch, offered: offered, negotiated: negotiated)
    }

    /// The handshake did not complete within the configured time; the connection was closed.
    public static func handshakeTimeout(_ timeout: Duration) -> TLSError {
        TLSError(.handshakeTimeout, timeout: timeout)
    }

    /// The peer closed the TCP connection without finishing what it started: during the handshake
    /// (`duringHandshake == true`) or in the middle of a TLS record.
    public static func unexpectedEOF(duringHandshake: Bool) -> TLSError {
        TLSError(.unexpectedEOF, duringHandshake: duringHandshake)
    }

    /// After the handshake, a record could not be processed: a fatal alert from the peer
    /// (for example `"tlsv13 alert certificate required"`), a bad record MAC, or a similar protocol error.
    public static func connectionFailed(reason: String) -> TLSError {
        TLSError(.connectionFailed, reason: reason)
    }

    /// A certificate (chain) could not be loaded. `source` is the file path, or `"PEM bytes"`.
    public static func invalidCertificate(source: String, reason: String) -> TLSError {
        TLSError(.invalidCertificate, reason: reason, source: source)
    }

    /// A private key could not be loaded or does not match its certificate (`"key values mismatch"`).
    /// `source` is the file path, or `"PEM bytes"`.
    public static func invalidPrivateKey(source: String, reason: String) -> TLSError {
        TLSError(.invalidPrivateKey, reason: reason, source: source)
    }

    /// Trust roots (CA certificates) could not be loaded. `source` is the file or directory path, or
    /// `"PEM bytes"`.
    public static func invalidTrustRoots(source: String, reason: String) -> TLSError {
        TLSError(.invalidTrustRoots, reason: reason, source: source)
    }

    /// The configuration was rejected by OpenSSL or is inconsistent (for example an empty or
    /// over-long ALPN protocol name, a cipher list that selects no cipher, or a server without a
    /// certificate).
    public static func invalidConfiguration(reason: String) -> TLSError {
        TLSError(.invalidConfiguration, reason: reason)
    }
}

// MARK: - Description

extension TLSError {
    /// A human-readable description that includes OpenSSL's reason.
    public var description: String {
        let reason = reason ?? ""
        let source = source ?? ""
        switch code {
        case .handshakeFailed:
            return "TLS handshake failed: \(reason)"
        case .certificateVerifyFailed:
            return "certificate verify failed: \(reason)"
        case .alpnMismatch:
            let offered = offered ?? []
            let list = offered.isEmpty ? "none" : offered.joined(separator: ", ")
            return "TLS ALPN mismatch: offered \(list); negotiated \(negotiated ?? "none")"
        case .handshakeTimeout:
            return "TLS handshake timed out after \(timeout ?? .zero)"
        case .unexpectedEOF:
            return duringHandshake == true
                ? "TLS peer closed the connection during the handshake"
                : "TLS peer closed the connection in the middle of a record"
        case .connectionFailed:
            return "TLS connection failed: \(reason)"
        case .invalidCertificate:
            return "invalid certificate (\(source)): \(reason)"
        case .invalidPrivateKey:
            return "invalid private key (\(source)): \(reason)"
        case .invalidTrustRoots:
            return "invalid trust roots (\(source)): \(reason)"
        case .invalidConfiguration:
            return "invalid TLS configuration: \(reason)"
        default:
            return "TLS error: \(code)"
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
