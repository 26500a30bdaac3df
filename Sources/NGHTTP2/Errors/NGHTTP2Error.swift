internal import CNGHTTP2

/// An error code returned by libnghttp2 (`nghttp2_error`), thrown as a Swift error.
///
/// Every one of the 42 codes that libnghttp2 1.52 defines has a case; a code this enum does not know
/// (from a newer library) arrives as ``unknown(_:)``. ``isFatal`` tells whether the session can go on.
public enum NGHTTP2Error: Error, Hashable, Sendable {
    /// Invalid argument passed. (`NGHTTP2_ERR_INVALID_ARGUMENT`, -501)
    case invalidArgument
    /// Out of buffer space. (`NGHTTP2_ERR_BUFFER_ERROR`, -502)
    case bufferError
    /// The specified protocol version is not supported. (`NGHTTP2_ERR_UNSUPPORTED_VERSION`, -503)
    case unsupportedVersion
    /// Used as a return value from send/recv callbacks: the operation would block. (`NGHTTP2_ERR_WOULDBLOCK`, -504)
    case wouldBlock
    /// General protocol error. (`NGHTTP2_ERR_PROTO`, -505)
    case proto
    /// The frame is invalid. (`NGHTTP2_ERR_INVALID_FRAME`, -506)
    case invalidFrame
    /// The peer performed a shutdown on the connection. (`NGHTTP2_ERR_EOF`, -507)
    case eof
    /// Used as a return value from a data source read callback: defer the DATA frame. (`NGHTTP2_ERR_DEFERRED`, -508)
    case deferred
    /// Stream ID has reached the maximum value; no stream ID is available. (`NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE`, -509)
    case streamIDNotAvailable
    /// The stream is already closed, or does not exist. (`NGHTTP2_ERR_STREAM_CLOSED`, -510)
    case streamClosed
    /// RST_STREAM has been added to the outbound queue; the stream is closing. (`NGHTTP2_ERR_STREAM_CLOSING`, -511)
    case streamClosing
    /// The transmission is not allowed for this stream (e.g. a frame with END_STREAM was already sent). (`NGHTTP2_ERR_STREAM_SHUT_WR`, -512)
    case streamShutWrite
    /// The stream ID is invalid. (`NGHTTP2_ERR_INVALID_STREAM_ID`, -513)
    case invalidStreamID
    /// The state of the stream is not valid (e.g. DATA cannot be sent to a stream whose response headers are not sent). (`NGHTTP2_ERR_INVALID_STREAM_STATE`, -514)
    case invalidStreamState
    /// Another DATA frame has already been deferred. (`NGHTTP2_ERR_DEFERRED_DATA_EXIST`, -515)
    case deferredDataExist
    /// Starting a new stream is not allowed (e.g. GOAWAY has been sent or received). (`NGHTTP2_ERR_START_STREAM_NOT_ALLOWED`, -516)
    case startStreamNotAllowed
    /// GOAWAY has already been sent. (`NGHTTP2_ERR_GOAWAY_ALREADY_SENT`, -517)
    case goawayAlreadySent
    /// The received frame contains a header block that is not valid. (`NGHTTP2_ERR_INVALID_HEADER_BLOCK`, -518)
    case invalidHeaderBlock
    /// Indicates that the context is not suitable to perform the requested operation. (`NGHTTP2_ERR_INVALID_STATE`, -519)
    case invalidState
    /// The user callback function failed due to a temporal error; only the stream is reset. (`NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE`, -521)
    case temporalCallbackFailure
    /// The length of the frame is invalid, either too large or too small. (`NGHTTP2_ERR_FRAME_SIZE_ERROR`, -522)
    case frameSizeError
    /// Header block inflate/deflate error. (`NGHTTP2_ERR_HEADER_COMP`, -523)
    case headerCompression
    /// Flow control error. (`NGHTTP2_ERR_FLOW_CONTROL`, -524)
    case flowControl
    /// Insufficient buffer size given to a function. (`NGHTTP2_ERR_INSUFF_BUFSIZE`, -525)
    case insufficientBufferSize
    /// Callback was paused by the application. (`NGHTTP2_ERR_PAUSE`, -526)
    case pause
    /// There are too many in-flight SETTINGS frames and no more transmission of SETTINGS is allowed. (`NGHTTP2_ERR_TOO_MANY_INFLIGHT_SETTINGS`, -527)
    case tooManyInflightSettings
    /// The server push is disabled. (`NGHTTP2_ERR_PUSH_DISABLED`, -528)
    case pushDisabled
    /// DATA or HEADERS frame for a given stream has been already submitted and has not been fully processed yet. (`NGHTTP2_ERR_DATA_EXIST`, -529)
    case dataExist
    /// The current session is closing due to a connection error or `terminate`. (`NGHTTP2_ERR_SESSION_CLOSING`, -530)
    case sessionClosing
    /// Invalid HTTP header field was received and the stream is going to be closed. (`NGHTTP2_ERR_HTTP_HEADER`, -531)
    case httpHeader
    /// Violation in HTTP messaging rule. (`NGHTTP2_ERR_HTTP_MESSAGING`, -532)
    case httpMessaging
    /// Stream was refused. (`NGHTTP2_ERR_REFUSED_STREAM`, -533)
    case refusedStream
    /// Unexpected internal error, but recovered. (`NGHTTP2_ERR_INTERNAL`, -534)
    case `internal`
    /// Indicates that a processing was canceled. (`NGHTTP2_ERR_CANCEL`, -535)
    case cancel
    /// When a local endpoint expects to receive a SETTINGS frame, it receives another type of frame. (`NGHTTP2_ERR_SETTINGS_EXPECTED`, -536)
    case settingsExpected
    /// The number of SETTINGS entries in a received SETTINGS frame exceeds the limit (`Session.Options.maxSettings`). (`NGHTTP2_ERR_TOO_MANY_SETTINGS`, -537)
    case tooManySettings
    /// The errors at or below this value are fatal; the value itself is only the threshold. (`NGHTTP2_ERR_FATAL`, -900)
    case fatal
    /// Out of memory. Fatal. (`NGHTTP2_ERR_NOMEM`, -901)
    case noMemory
    /// A user callback failed. Fatal. (`NGHTTP2_ERR_CALLBACK_FAILURE`, -902)
    case callbackFailure
    /// Invalid client magic (connection preface) was received. Fatal. (`NGHTTP2_ERR_BAD_CLIENT_MAGIC`, -903)
    case badClientMagic
    /// The peer flooded the outbound queue with frames that need a reply (PING, SETTINGS acks). Fatal. (`NGHTTP2_ERR_FLOODED`, -904)
    case flooded
    /// The peer sent more CONTINUATION frames than `Session.Options.maxContinuations` allows. Fatal. (`NGHTTP2_ERR_TOO_MANY_CONTINUATIONS`, -905)
    case tooManyContinuations
    /// A code this version of the binding does not know.
    case unknown(Int32)

    /// Creates the error for a libnghttp2 return code (a negative number).
    public init(code: Int32) {
        switch code {
        case -501: self = .invalidArgument
        case -502: self = .bufferError
        case -503: self = .unsupportedVersion
        case -504: self = .wouldBlock
        case -505: self = .proto
        case -506: self = .invalidFrame
        case -507: self = .eof
        case -508: self = .deferred
        case -509: self = .streamIDNotAvailable
        case -510: self = .streamClosed
        case -511: self = .streamClosing
        case -512: self = .streamShutWrite
        case -513: self = .invalidStreamID
        case -514: self = .invalidStreamState
        case -515: self = .deferredDataExist
        case -516: self = .startStreamNotAllowed
        case -517: self = .goawayAlreadySent
        case -518: self = .invalidHeaderBlock
        case -519: self = .invalidState
        case -521: self = .temporalCallbackFailure
        case -522: self = .frameSizeError
        case -523: self = .headerCompression
        case -524: self = .flowControl
        case -525: self = .insufficientBufferSize
        case -526: self = .pause
        case -527: self = .tooManyInflightSettings
        case -528: self = .pushDisabled
        case -529: self = .dataExist
        case -530: self = .sessionClosing
        case -531: self = .httpHeader
        case -532: self = .httpMessaging
        case -533: self = .refusedStream
        case -534: self = .internal
        case -535: self = .cancel
        case -536: self = .settingsExpected
        case -537: self = .tooManySettings
        case -900: self = .fatal
        case -901: self = .noMemory
        case -902: self = .callbackFailure
        case -903: self = .badClientMagic
        case -904: self = .flooded
        case -905: self = .tooManyContinuations
        default: self = .unknown(code)
        }
    }

    /// The libnghttp2 return code.
    public var code: Int32 {
        switch self {
        case .invalidArgument: return -501
        case .bufferError: return -502
        case .unsupportedVersion: return -503
        case .wouldBlock: return -504
        case .proto: return -505
        case .invalidFrame: return -506
        case .eof: return -507
        case .deferred: return -508
        case .streamIDNotAvailable: return -509
        case .streamClosed: return -510
        case .streamClosing: return -511
        case .streamShutWrite: return -512
        case .invalidStreamID: return -513
        case .invalidStreamState: return -514
        case .deferredDataExist: return -515
        case .startStreamNotAllowed: return -516
        case .goawayAlreadySent: return -517
        case .invalidHeaderBlock: return -518
        case .invalidState: return -519
        case .temporalCallbackFailure: return -521
        case .frameSizeError: return -522
        case .headerCompression: return -523
        case .flowControl: return -524
        case .insufficientBufferSize: return -525
        case .pause: return -526
        case .tooManyInflightSettings: return -527
        case .pushDisabled: return -528
        case .dataExist: return -529
        case .sessionClosing: return -530
        case .httpHeader: return -531
        case .httpMessaging: return -532
        case .refusedStream: return -533
        case .internal: return -534
        case .cancel: return -535
        case .settingsExpected: return -536
        case .tooManySettings: return -537
        case .fatal: return -900
        case .noMemory: return -901
        case .callbackFailure: return -902
        case .badClientMagic: return -903
        case .flooded: return -904
        case .tooManyContinuations: return -905
        case .unknown(let code): return code
        }
    }

    /// Whether the session cannot be used any more (`nghttp2_is_fatal`: codes below -900).
    ///
    /// After a fatal error, terminate the session, send what it has pending, and close the connection.
    public var isFatal: Bool {
        nghttp2_is_fatal(code) != 0
    }

    /// libnghttp2's own message for this code (`nghttp2_strerror`).
    public var message: String {
        String(cString: nghttp2_strerror(code))
    }
}

extension NGHTTP2Error: CustomStringConvertible {
    /// A readable form, for logs and error messages.
    public var description: String { "\(message) (nghttp2 error \(code))" }
}

extension NGHTTP2Error {
    /// Throws the error for `code` when it is negative; returns it unchanged otherwise.
    @discardableResult
    static func check<T: BinaryInteger>(_ code: T) throws(NGHTTP2Error) -> T {
        if code < 0 { throw NGHTTP2Error(code: Int32(code)) }
        return code
    }
}
