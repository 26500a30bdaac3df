extension Session {
    /// The typed callbacks a ``Session`` makes while it receives and sends.
    ///
    /// Every closure runs inside `receive(_:)` or ``Session/send(_:)``. From a callback you may
    /// submit frames, consume, resume data and set stream user data, but not call `receive` or `send`
    /// (they throw ``NGHTTP2Error/invalidState`` there). A closure that throws stops the session: `receive` or
    /// `send` rethrows the same error. Throw ``Session/StreamReset`` instead to reset only the stream concerned.
    ///
    /// > Note: the session owns its callbacks; capture the session itself `unowned` or `weak` to avoid a cycle.
    public struct Callbacks {
        /// A HEADERS or PUSH_PROMISE frame starts a field block on `streamID`
        /// (for PUSH_PROMISE: the promised stream).
        public var onBeginHeaders: ((_ streamID: Int32, _ category: HeadersCategory) throws -> Void)?
        /// One header field arrived on `streamID` (for PUSH_PROMISE: the promised stream).
        public var onHeader: ((_ streamID: Int32, _ category: HeadersCategory, _ field: HeaderField) throws -> Void)?
        /// A chunk of a DATA frame's payload arrived. The bytes are valid only during the call.
        public var onDataChunk: ((_ streamID: Int32, _ data: UnsafeRawBufferPointer) throws -> Void)?
        /// A whole frame arrived (HEADERS with its complete field block, DATA once its payload is delivered).
        public var onFrameReceived: ((_ frame: Frame) throws -> Void)?
        /// A frame was sent (serialized into the output).
        public var onFrameSent: ((_ frame: Frame) throws -> Void)?
        /// This side sent END_STREAM on `streamID` (on DATA or HEADERS): its half of the stream is done. Cheaper
        /// than ``onFrameSent`` when that is all you need, e.g. for a server that answered before the request body
        /// ended and now asks the client to stop with RST_STREAM NO_ERROR (RFC 9113 §8.1).
        public var onEndStreamSent: ((_ streamID: Int32) throws -> Void)?
        /// This side sent GOAWAY (RFC 9113 §6.8), also one that libnghttp2 queued itself on a connection error: its
        /// last stream ID, error code and debug data. Cheaper than ``onFrameSent`` when that is all you need.
        public var onGoAwaySent: ((_ lastStreamID: Int32, _ errorCode: ErrorCode, _ debugData: [UInt8]) throws -> Void)?
        /// This side sent RST_STREAM on `streamID` with `errorCode` (RFC 9113 §6.4), also one that libnghttp2 queued
        /// itself for a stream error. Cheaper than ``onFrameSent`` when that is all you need.
        public var onRSTStreamSent: ((_ streamID: Int32, _ errorCode: ErrorCode) throws -> Void)?
        /// A frame could not be sent, with the reason (e.g. ``NGHTTP2Error/startStreamNotAllowed`` after GOAWAY).
        public var onFrameNotSent: ((_ frame: Frame, _ error: NGHTTP2Error) throws -> Void)?
        /// A received frame was invalid; libnghttp2 has already reset the stream or closed the connection.
        public var onInvalidFrameReceived: ((_ frame: Frame, _ error: NGHTTP2Error) throws -> Void)?
        /// A stream closed, with the error code of its RST_STREAM or GOAWAY (``ErrorCode/noError`` when it ended cleanly).
        public var onStreamClosed: ((_ streamID: Int32, _ errorCode: ErrorCode) throws -> Void)?
        /// The header of a frame arrived, before its payload.
        public var onBeginFrame: ((_ header: FrameHeader) throws -> Void)?
        /// A frame is about to be serialized. Return `false` to cancel it (it then reaches ``onFrameNotSent``
        /// with ``NGHTTP2Error/cancel``).
        public var beforeFrameSend: ((_ frame: Frame) throws -> Bool)?
        /// libnghttp2 explains an error it is about to act on (e.g. why it sends GOAWAY), in words.
        public var onErrorMessage: ((_ error: NGHTTP2Error, _ message: String) -> Void)?

        /// No callbacks.
        public init() {}
    }

    /// Thrown from a callback to reset only the stream the callback is about, with `errorCode`.
    ///
    /// From ``Callbacks/onBeginHeaders`` and ``Callbacks/onHeader`` the rest of the field block is then ignored.
    public struct StreamReset: Error, Hashable, Sendable {
        /// The RST_STREAM error code.
        public var errorCode: ErrorCode
        /// Creates the request to reset the stream.
        public init(_ errorCode: ErrorCode) { self.errorCode = errorCode }
    }
}
