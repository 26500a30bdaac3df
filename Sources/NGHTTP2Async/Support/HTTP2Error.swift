public import NGHTTP2

/// Why an HTTP/2 request, response or connection failed.
///
/// An extensible error: new codes can be added without breaking code that matches on it. Match on
/// ``code``, and read the context properties that the code documents:
///
/// ```swift
/// do {
///     let response = try await client.get("/a")
/// } catch let error as HTTP2Error where error.code == .notProcessed {
///     // safe to send again on a new connection (error.streamID says which stream it was)
/// } catch let error as HTTP2Error where error.code == .streamReset && error.byPeer {
///     print("the server reset stream \(error.streamID!) with \(error.errorCode!)")
/// }
/// ```
///
/// Two errors are equal when their code and every context property are equal.
public struct HTTP2Error: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong. The context properties that apply are listed on each code.
    public let code: Code

    /// The stream the error is about: set for ``Code/notProcessed`` and ``Code/streamReset``, `nil` otherwise.
    public let streamID: Int32?

    /// The HTTP/2 error code the stream or connection ended with: the RST_STREAM code for ``Code/streamReset``
    /// ([RFC 9113 §6.4](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.4)), the GOAWAY code for
    /// ``Code/connectionClosed`` when a GOAWAY was received
    /// ([RFC 9113 §6.8](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.8)), the code this side's GOAWAY
    /// carried for a ``Code/protocolViolation`` that it detected itself; `nil` otherwise.
    public let errorCode: ErrorCode?

    /// For ``Code/streamReset``: whether the peer sent the RST_STREAM (`true`) or this side did (`false`).
    /// `false` for every other code.
    public let byPeer: Bool

    /// For ``Code/protocolViolation``: the libnghttp2 error that made the connection fatal; `nil` otherwise (and for
    /// a violation this package detected itself, whose rule is in ``detail``).
    public let underlying: NGHTTP2Error?

    /// For ``Code/bodyTooLarge``: the limit in bytes that the body went over; `nil` otherwise.
    public let limit: Int?

    /// For ``Code/keepAliveTimeout`` and ``Code/idleTimeout``: the time that ran out; `nil` otherwise.
    public let timeout: Duration?

    /// For an error thrown by ``HTTP2Client`` after it tried more than once: how many attempts were made (the first
    /// and each retry); `nil` when there was one attempt, or the error did not come from ``HTTP2Client``.
    public internal(set) var attempts: Int?

    /// A text that says more: the URL for ``Code/invalidURL``, what was wrong for ``Code/malformedMessage`` and
    /// ``Code/invalidArgument``, the rule broken for a ``Code/protocolViolation`` this package detected, an optional
    /// explanation for ``Code/connectionClosed``; `nil` otherwise.
    public let detail: String?

    private init(
        _ code: Code,
        streamID: Int32? = nil,
        errorCode: ErrorCode? = nil,
        byPeer: Bool = false,
        underlying: NGHTTP2Error? = nil,
        limit: Int? = nil,
        timeout: Duration? = nil,
        detail: String? = nil
    ) {
        self.code = code
        self.streamID = streamID
        self.errorCode = errorCode
        self.byPeer = byPeer
        self.underlying = underlying
        self.limit = limit
        self.timeout = timeout
        self.detail = detail
    }
}

// MARK: - Codes

extension HTTP2Error {
    /// The kind of an ``HTTP2Error``. More codes may be added in later versions: a `switch` over codes is not
    /// possible, compare with `==` instead.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Hashable, Sendable {
            case notProcessed, streamReset, connectionClosed, protocolViolation, bodyTooLarge, invalidURL
            case malformedMessage, connectTimeout, sessionClosed, keepAliveTimeout, idleTimeout, readerBusy
            case invalidArgument, requestTimeout, readTimeout, tooManyRedirects, redirectLoop
            case decompressionFailed, decompressionLimit, proxyConnectFailed, clientShutDown, peerSpeaksHTTP1
            case connectRefused, extendedConnectNotEnabled
        }

        private let backing: Backing

        private init(_ backing: Backing) { self.backing = backing }

        /// The peer never processed the stream; safe to retry. See ``HTTP2Error/notProcessed(streamID:)``.
        public static let notProcessed = Code(.notProcessed)
        /// The stream was reset (RST_STREAM). See ``HTTP2Error/streamReset(streamID:errorCode:byPeer:)``.
        public static let streamReset = Code(.streamReset)
        /// The connection ended while the stream was open. See ``HTTP2Error/connectionClosed(errorCode:)``.
        public static let connectionClosed = Code(.connectionClosed)
        /// libnghttp2 rejected the connection's input or state. See ``HTTP2Error/protocolViolation(_:)``.
        public static let protocolViolation = Code(.protocolViolation)
        /// A body was larger than the given limit. See ``HTTP2Error/bodyTooLarge(limit:)``.
        public static let bodyTooLarge = Code(.bodyTooLarge)
        /// The URL could not be used. See ``HTTP2Error/invalidURL(_:)``.
        public static let invalidURL = Code(.invalidURL)
        /// A received message was not valid HTTP. See ``HTTP2Error/malformedMessage(_:)``.
        public static let malformedMessage = Code(.malformedMessage)
        /// The connection could not be established in time. See ``HTTP2Error/connectTimeout``.
        public static let connectTimeout = Code(.connectTimeout)
        /// The session was closed by the application. See ``HTTP2Error/sessionClosed``.
        public static let sessionClosed = Code(.sessionClosed)
        /// The peer stopped answering PINGs. See ``HTTP2Error/keepAliveTimeout(_:)``.
        public static let keepAliveTimeout = Code(.keepAliveTimeout)
        /// The connection was closed because it was idle. See ``HTTP2Error/idleTimeout(_:)``.
        public static let idleTimeout = Code(.idleTimeout)
        /// Two tasks read one ``StreamReader`` at once. See ``HTTP2Error/readerBusy``.
        public static let readerBusy = Code(.readerBusy)
        /// The API was called with an argument it cannot accept. See ``HTTP2Error/invalidArgument(_:)``.
        public static let invalidArgument = Code(.invalidArgument)

        /// The request's deadline passed. See ``HTTP2Error/requestTimeout(_:)``.
        public static let requestTimeout = Code(.requestTimeout)
        /// No bytes of the response arrived for too long. See ``HTTP2Error/readTimeout(_:)``.
        public static let readTimeout = Code(.readTimeout)
        /// More redirects than allowed. See ``HTTP2Error/tooManyRedirects(limit:)``.
        public static let tooManyRedirects = Code(.tooManyRedirects)
        /// A redirect led back to a URL already visited. See ``HTTP2Error/redirectLoop(_:)``.
        public static let redirectLoop = Code(.redirectLoop)
        /// A compressed body could not be decoded. See ``HTTP2Error/decompressionFailed(_:)``.
        public static let decompressionFailed = Code(.decompressionFailed)
        /// A compressed body expanded beyond the allowed ratio. See ``HTTP2Error/decompressionLimit(ratio:)``.
        public static let decompressionLimit = Code(.decompressionLimit)
        /// A forward proxy did not open the tunnel. See ``HTTP2Error/proxyConnectFailed(_:)``.
        public static let proxyConnectFailed = Code(.proxyConnectFailed)
        /// The ``HTTP2Client`` was shut down. See ``HTTP2Error/clientShutDown``.
        public static let clientShutDown = Code(.clientShutDown)
        /// The server answered a CONNECT with a status other than 2xx. See ``HTTP2Error/connectRefused(_:)``.
        public static let connectRefused = Code(.connectRefused)
        /// The server does not allow extended CONNECT. See ``HTTP2Error/extendedConnectNotEnabled``.
        public static let extendedConnectNotEnabled = Code(.extendedConnectNotEnabled)
        /// The server answered the HTTP/2 connection preface (RFC 9113 §3.4) with HTTP/1.x (a status line, or an
        /// HTTP/0.9-style text answer): it does not speak HTTP/2 on that port (without TLS, prior knowledge works only
        /// with an HTTP/2 server). ``detail`` is the first line it sent. Not retry-safe: another connection would get
        /// the same answer.
        public static let peerSpeaksHTTP1 = Code(.peerSpeaksHTTP1)

        /// The code's name, for example `"notProcessed"`.
        public var description: String { backing.rawValue }

        /// Whether `error` is an ``HTTP2Error`` with this code, so that a code can be a `catch` or `case`
        /// pattern: `catch HTTP2Error.Code.notProcessed { … }`.
        public static func ~= (pattern: Code, error: any Error) -> Bool {
            (error as? HTTP2Error)?.code == pattern
        }
    }
}

// MARK: - Errors

extension HTTP2Error {
    /// The peer never processed this stream: it was above the last stream ID of the peer's GOAWAY, or refused
    /// with REFUSED_STREAM, or never sent because the connection was going away. Safe to retry on a new
    /// connection, whatever the method ([RFC 9113 §8.7](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.7)).
    public static func notProcessed(streamID: Int32) -> HTTP2Error {
        HTTP2Error(.notProcessed, streamID: streamID)
    }

    /// The request was never sent, for the reason in `detail` (for example the connection had already ended, or the
    /// server refused the connection at its connection limit). Safe to retry on a new connection.
    public static func notProcessed(streamID: Int32, detail: String) -> HTTP2Error {
        HTTP2Error(.notProcessed, streamID: streamID, detail: detail)
    }

    /// The stream was reset with `errorCode`, by the peer (`byPeer`) or by this side
    /// ([RFC 9113 §6.4](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.4)).
    public static func streamReset(streamID: Int32, errorCode: ErrorCode, byPeer: Bool) -> HTTP2Error {
        HTTP2Error(.streamReset, streamID: streamID, errorCode: errorCode, byPeer: byPeer)
    }

    /// The connection ended while the stream was open: `errorCode` is the GOAWAY code if one was received
    /// ([RFC 9113 §6.8](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.8)).
    public static func connectionClosed(errorCode: ErrorCode?) -> HTTP2Error {
        HTTP2Error(.connectionClosed, errorCode: errorCode)
    }

    /// The connection ended while the stream was open, for the reason in `detail` (for example the GOAWAY's
    /// debug data); `errorCode` is the GOAWAY code if one was received
    /// ([RFC 9113 §6.8](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.8)).
    public static func connectionClosed(errorCode: ErrorCode?, detail: String?) -> HTTP2Error {
        HTTP2Error(.connectionClosed, errorCode: errorCode, detail: detail)
    }

    /// libnghttp2 rejected the connection's input or state (fatal): the connection was closed with GOAWAY
    /// ([RFC 9113 §5.4.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-5.4.1)).
    public static func protocolViolation(_ error: NGHTTP2Error) -> HTTP2Error {
        HTTP2Error(.protocolViolation, underlying: error)
    }

    /// The peer broke a rule of RFC 9113 that this package checks itself (`detail` says which, with its section), and
    /// the connection was closed with GOAWAY(`errorCode`)
    /// ([RFC 9113 §5.4.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-5.4.1)).
    public static func protocolViolation(errorCode: ErrorCode, detail: String) -> HTTP2Error {
        HTTP2Error(.protocolViolation, errorCode: errorCode, detail: detail)
    }

    /// A body was larger than the limit given to ``StreamReader/collect(upTo:)``.
    public static func bodyTooLarge(limit: Int) -> HTTP2Error {
        HTTP2Error(.bodyTooLarge, limit: limit)
    }

    /// The URL could not be used: not `http://host[:port]/path` (or `https://` where TLS is available).
    public static func invalidURL(_ url: String) -> HTTP2Error {
        HTTP2Error(.invalidURL, detail: url)
    }

    /// A received message was not valid HTTP (e.g. no `:status`,
    /// [RFC 9113 §8.1.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.1.1)).
    public static func malformedMessage(_ what: String) -> HTTP2Error {
        HTTP2Error(.malformedMessage, detail: what)
    }

    /// The connection could not be established in time.
    public static let connectTimeout = HTTP2Error(.connectTimeout)

    /// The session was closed by the application; no new requests are accepted.
    public static let sessionClosed = HTTP2Error(.sessionClosed)

    /// The peer did not acknowledge a PING within `timeout`, so the connection was taken as dead and closed
    /// ([RFC 9113 §6.7](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.7)).
    public static func keepAliveTimeout(_ timeout: Duration) -> HTTP2Error {
        HTTP2Error(.keepAliveTimeout, timeout: timeout)
    }

    /// The connection had no open stream for `timeout` and was closed (with GOAWAY,
    /// [RFC 9113 §9.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-9.1)).
    public static func idleTimeout(_ timeout: Duration) -> HTTP2Error {
        HTTP2Error(.idleTimeout, timeout: timeout)
    }

    /// Another task is already reading this ``StreamReader``: a reader has one consumer at a time. The read that
    /// was first keeps working.
    public static let readerBusy = HTTP2Error(.readerBusy)

    /// The API was called with an argument it cannot accept (for example `read(upTo: 0)`, or an informational
    /// response whose status is not 1xx); `what` says which.
    public static func invalidArgument(_ what: String) -> HTTP2Error {
        HTTP2Error(.invalidArgument, detail: what)
    }

    /// The request did not complete within its deadline (``HTTP2Client/execute(_:body:timeout:)``): the stream was
    /// reset with CANCEL. `timeout` is the time the request was given.
    public static func requestTimeout(_ timeout: Duration) -> HTTP2Error {
        HTTP2Error(.requestTimeout, timeout: timeout)
    }

    /// No byte of the response (head or body) arrived for `timeout` (``HTTP2Client/Configuration/readTimeout``): the
    /// stream was reset with CANCEL.
    public static func readTimeout(_ timeout: Duration) -> HTTP2Error {
        HTTP2Error(.readTimeout, timeout: timeout)
    }

    /// The response was a redirect after `limit` redirects had been followed
    /// (``HTTP2Client/RedirectPolicy``).
    public static func tooManyRedirects(limit: Int) -> HTTP2Error {
        HTTP2Error(.tooManyRedirects, limit: limit)
    }

    /// A redirect pointed at `url`, which this chain of redirects had already requested
    /// ([RFC 9110 §15.4](https://www.rfc-editor.org/rfc/rfc9110.html#section-15.4)).
    public static func redirectLoop(_ url: String) -> HTTP2Error {
        HTTP2Error(.redirectLoop, detail: url)
    }

    /// The body's `content-encoding` said gzip or deflate, but the bytes could not be decoded (`what` says why).
    public static func decompressionFailed(_ what: String) -> HTTP2Error {
        HTTP2Error(.decompressionFailed, detail: what)
    }

    /// A compressed body decoded to more than `ratio` times its compressed size (a decompression bomb): the stream
    /// was cancelled.
    public static func decompressionLimit(ratio: Int) -> HTTP2Error {
        HTTP2Error(.decompressionLimit, limit: ratio)
    }

    /// The forward proxy did not open a tunnel: `what` is its status line (for example `407 Proxy Authentication
    /// Required`) or why the exchange failed ([RFC 9110 §9.3.6](https://www.rfc-editor.org/rfc/rfc9110.html#section-9.3.6)).
    public static func proxyConnectFailed(_ what: String) -> HTTP2Error {
        HTTP2Error(.proxyConnectFailed, detail: what)
    }

    /// The ``HTTP2Client`` was shut down: it takes no new requests.
    public static let clientShutDown = HTTP2Error(.clientShutDown)

    /// The server answered a CONNECT ([RFC 9113 §8.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.5),
    /// [RFC 8441 §4](https://www.rfc-editor.org/rfc/rfc8441.html#section-4)) with a status other than 2xx, so no
    /// tunnel was opened: `status` is its status code, for example `403` (HTTP/2 carries no reason phrase).
    public static func connectRefused(_ status: String) -> HTTP2Error {
        HTTP2Error(.connectRefused, detail: status)
    }

    /// The server's SETTINGS did not carry SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, so an extended CONNECT (one with
    /// `:protocol`) may not be sent ([RFC 8441 §3](https://www.rfc-editor.org/rfc/rfc8441.html#section-3)). Nothing
    /// was sent.
    public static let extendedConnectNotEnabled = HTTP2Error(.extendedConnectNotEnabled)

    /// The server answered in HTTP/1.x; `statusLine` is the first line it sent.
    public static func peerSpeaksHTTP1(statusLine: String) -> HTTP2Error {
        HTTP2Error(.peerSpeaksHTTP1, detail: statusLine)
    }

    /// This error with ``attempts`` set to `count`.
    func afterAttempts(_ count: Int) -> HTTP2Error {
        var error = self
        error.attempts = count
        return error
    }
}

// MARK: - Properties

extension HTTP2Error {
    /// Whether the request can be sent again on a new connection without risk of it being processed twice:
    /// ``Code/notProcessed`` always, ``Code/streamReset`` only with REFUSED_STREAM
    /// ([RFC 9113 §8.7](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.7)).
    public var isRetrySafe: Bool {
        code == .notProcessed || (code == .streamReset && errorCode == .refusedStream)
    }

    /// A readable form, for logs and error messages.
    public var description: String {
        let what = detail ?? ""
        let described: String = switch code {
        case .notProcessed:
            "stream \(streamID ?? 0) was not processed by the peer (safe to retry)" + (detail.map { ": \($0)" } ?? "")
        case .streamReset:
            "stream \(streamID ?? 0) was reset \(byPeer ? "by the peer" : "locally") with \(errorCode ?? .noError)"
        case .connectionClosed:
            "the connection closed" + (errorCode.map { " (GOAWAY \($0))" } ?? "") + (detail.map { ": \($0)" } ?? "")
        case .protocolViolation: "HTTP/2 protocol violation: " + (underlying.map { "\($0)" } ?? detail ?? "")
        case .bodyTooLarge: "the body is larger than \(limit ?? 0) bytes"
        case .invalidURL: "invalid URL: \(what)"
        case .malformedMessage: "malformed HTTP message: \(what)"
        case .connectTimeout: "connect timed out"
        case .sessionClosed: "the session is closed"
        case .keepAliveTimeout: "the peer did not acknowledge a PING within \(timeout ?? .zero)"
        case .idleTimeout: "the connection was closed after being idle for \(timeout ?? .zero)"
        case .readerBusy: "another task is already reading this stream"
        case .invalidArgument: "invalid argument: \(what)"
        case .requestTimeout: "the request did not complete within \(timeout ?? .zero)"
        case .readTimeout: "no data arrived for \(timeout ?? .zero)"
        case .tooManyRedirects: "more than \(limit ?? 0) redirects"
        case .redirectLoop: "redirect loop: \(what) was already requested"
        case .decompressionFailed: "the body could not be decompressed: \(what)"
        case .decompressionLimit: "the body expanded more than \(limit ?? 0) times when decompressed"
        case .proxyConnectFailed: "the proxy did not open a tunnel: \(what)"
        case .clientShutDown: "the client was shut down"
        case .connectRefused: "the server refused the CONNECT: \(what)"
        case .extendedConnectNotEnabled: "the server does not allow extended CONNECT (no SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, RFC 8441 §3)"
        case .peerSpeaksHTTP1: "the server speaks HTTP/1.1, not HTTP/2 (it answered the HTTP/2 preface with \"\(what)\")"
        default: code.description
        }
        guard let attempts, attempts > 1 else { return described }
        return described + " (after \(attempts) attempts)"
    }
}
