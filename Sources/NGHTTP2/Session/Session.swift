internal import CNGHTTP2

/// An HTTP/2 connection endpoint, client or server, that does no I/O of its own (`nghttp2_session`).
///
/// Feed it the bytes that arrive with `receive(_:)`; it parses them and calls your ``Callbacks``.
/// Submit requests, responses and other frames with the `submit…` methods; take the bytes it wants on the
/// wire with ``send(_:)``. Drive it from any I/O: a socket, a NIO channel, a test that shuttles bytes between
/// two sessions in memory.
///
/// ```swift
/// let client = try Session(role: .client)
/// try client.submitSettings([Setting(.enablePush, 0)])
/// let streamID = try client.submitRequest([
///     [":method", "GET"], [":scheme", "https"], [":authority", "example.org"], [":path", "/"],
/// ])
/// let bytes = try client.send()   // the preface, SETTINGS and HEADERS, ready for the socket
/// ```
///
/// A session is not thread-safe: use it from one thread (or one NIO event loop) at a time.
public final class Session {
    /// Which end of the connection a session is.
    public enum Role: Sendable, Hashable {
        /// Sends the connection preface and requests.
        case client
        /// Expects the preface and answers requests.
        case server
    }

    /// Which end of the connection this session is.
    public let role: Role
    /// The callbacks the session makes while receiving and sending.
    // Unchecked: each callback reads one closure out and lets go before calling it, so no access ever overlaps,
    // and the check was a runtime call per libnghttp2 callback.
    @exclusivity(unchecked)
    public var callbacks: Callbacks

    let handle: OpaquePointer
    /// The first error thrown by a callback during the current receive or send, rethrown when it returns.
    var callbackError: (any Error)?
    /// Set while libnghttp2 is running (receive or send), to refuse re-entrant calls.
    var isDriving = false

    /// Whether `receive(_:)` or ``send(_:)`` is running: code called from a callback sees `true`, and must then
    /// leave receiving and sending to the caller of the running one (submits are fine).
    public var isProcessing: Bool { isDriving }
    /// Where zero-copy DATA payloads go during ``send(_:)``.
    var output: ((UnsafeRawBufferPointer) -> Void)?
    /// Bytes written through ``output`` by zero-copy providers during the current `mem_send`.
    var zeroCopyCount = 0
    /// Data providers of streams that still send, by stream ID.
    // Unchecked (as the two below): every access is a short lookup, insert or removal that calls out to nothing.
    @exclusivity(unchecked)
    var providers: [Int32: DataProvider] = [:]
    /// Application objects attached to streams, by stream ID; dropped when the stream closes.
    @exclusivity(unchecked)
    var streamUserData: [Int32: Any] = [:]
    /// The field block being received, and the SETTINGS_MAX_HEADER_LIST_SIZE it is held to.
    // Unchecked: modified only in short accesses that call out to nothing (a runtime check per received field
    // otherwise).
    @exclusivity(unchecked)
    var fieldBlock = ReceivedFieldBlock()
    /// The payload of the extension frame being received.
    var extensionPayload: [UInt8] = []

    /// Creates a session.
    ///
    /// - Parameters:
    ///   - role: client or server.
    ///   - options: tuning; see ``Options``.
    ///   - callbacks: what to call while receiving and sending.
    /// - Throws: ``NGHTTP2Error`` if libnghttp2 cannot allocate the session.
    public init(role: Role, options: Options = Options(), callbacks: Callbacks = Callbacks()) throws {
        self.role = role
        self.callbacks = callbacks
        var session: OpaquePointer?
        var cCallbacks: OpaquePointer?
        try NGHTTP2Error.check(nghttp2_session_callbacks_new(&cCallbacks))
        guard let cCallbacks else { throw NGHTTP2Error.noMemory }
        defer { nghttp2_session_callbacks_del(cCallbacks) }
        Trampolines.install(on: cCallbacks)
        // `self` is not complete yet, so libnghttp2 gets a placeholder user data that is replaced right after.
        try options.withOption { option in
            let rv =
                switch role {
                case .client: nghttp2_session_client_new2(&session, cCallbacks, nil, option)
                case .server: nghttp2_session_server_new2(&session, cCallbacks, nil, option)
                }
            try NGHTTP2Error.check(rv)
        }
        guard let session else { throw NGHTTP2Error.noMemory }
        self.handle = session
        nghttp2_session_set_user_data(session, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        // nghttp2_session_del runs no callbacks; providers and user data go with this object.
        nghttp2_session_del(handle)
    }

    /// Runs `body` with the raw `nghttp2_session *` under this session, to call a libnghttp2 function that the
    /// typed API does not cover (import `CNGHTTP2` for the C declarations).
    ///
    /// ```swift
    /// @_spi(RawHandle) import NGHTTP2
    /// import CNGHTTP2
    ///
    /// let peerLimit = session.withUnsafeRawSession { handle in
    ///     nghttp2_session_get_remote_settings(handle, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
    /// }
    /// ```
    ///
    /// An escape hatch, outside the typed API (hence `@_spi(RawHandle)`), and unsafe in the ways C is:
    /// - The pointer is valid only during `body`: do not store it or let it escape.
    /// - `body` must not call `nghttp2_session_mem_recv`, `nghttp2_session_mem_send`, `nghttp2_session_recv`,
    ///   `nghttp2_session_send` or `nghttp2_session_del`, nor replace the session's user data:
    ///   ``receive(_:)-(UnsafeRawBufferPointer)`` and ``send(_:)`` drive the session, and this object owns and
    ///   frees it.
    /// - Frames submitted with C `submit` functions go out with the next ``send(_:)``; data providers and stream
    ///   user data set through C are not known to this object (use the typed `submit…` methods for those).
    /// - Like the session, use it from one thread at a time. Inside a callback it may be used for what a
    ///   callback may do (submits, consume, reading state).
    ///
    /// - Returns: what `body` returns.
    @_spi(RawHandle)
    public func withUnsafeRawSession<R>(_ body: (OpaquePointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(handle) }
    }

    /// Runs `body` with the session a libnghttp2 callback belongs to, without retaining it (the caller of
    /// `mem_recv` / `mem_send` keeps it alive): one retain and release fewer per callback.
    @inline(__always)
    static func with<R>(_ userData: UnsafeMutableRawPointer?, _ body: (Session) throws -> R) rethrows -> R {
        try Unmanaged<Session>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
    }
}

// MARK: - Driving the session

extension Session {
    /// Parses received bytes and makes the callbacks they cause.
    ///
    /// - Returns: the number of bytes processed (all of them, unless the session stopped reading).
    /// - Throws: the error a callback threw, or an ``NGHTTP2Error`` when the input broke the protocol in a way
    ///   that ends the connection (``NGHTTP2Error/isFatal``, e.g. ``NGHTTP2Error/badClientMagic``). Stream-level
    ///   problems do not throw: libnghttp2 resets that stream (or queues GOAWAY) and goes on; call ``send(_:)``
    ///   afterwards to write what it queued.
    @discardableResult
    public func receive(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        guard !isDriving else { throw NGHTTP2Error.invalidState }
        isDriving = true
        defer { isDriving = false }
        let start = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let rv = nghttp2_session_mem_recv(handle, start, bytes.count)
        try rethrowCallbackError()
        return try NGHTTP2Error.check(rv)
    }

    /// Parses received bytes and makes the callbacks they cause. See ``receive(_:)-(UnsafeRawBufferPointer)``.
    @discardableResult
    public func receive(_ bytes: [UInt8]) throws -> Int {
        try bytes.withUnsafeBytes { try receive($0) }
    }

    /// Serializes every frame that is ready to go, handing the bytes to `output` in order.
    ///
    /// Call it after `receive(_:)` and after submitting; write what it hands out to the peer. The buffers are
    /// valid only during the call to `output`.
    ///
    /// - Returns: the number of bytes handed out.
    /// - Throws: the error a callback or data provider threw, or a fatal ``NGHTTP2Error``.
    @discardableResult
    public func send(_ output: (UnsafeRawBufferPointer) -> Void) throws -> Int {
        guard !isDriving else { throw NGHTTP2Error.invalidState }
        isDriving = true
        defer { isDriving = false }
        return try withoutActuallyEscaping(output) { output in
            var total = 0
            self.output = output
            self.zeroCopyCount = 0
            defer {
                self.output = nil
            }
            while true {
                var chunk: UnsafePointer<UInt8>?
                let count = nghttp2_session_mem_send(handle, &chunk)
                try rethrowCallbackError()
                try NGHTTP2Error.check(count)
                // Zero-copy payloads written during this mem_send precede the chunk it returns.
                total += zeroCopyCount
                zeroCopyCount = 0
                if count == 0 { break }
                output(UnsafeRawBufferPointer(start: chunk, count: count))
                total += count
            }
            // The session is over (e.g. its terminating GOAWAY went out after a connection error): libnghttp2 reads
            // no provider again and closes no stream, so without this the providers of streams still open would stay
            // until deinit, or forever when one refers back to the session's owner.
            if !providers.isEmpty && !wantsRead && !wantsWrite { providers.removeAll() }
            return total
        }
    }

    /// Lets go of every stream's data provider and user data at once, for a connection that is over while streams
    /// were open (its socket closed, or it is abandoned).
    ///
    /// libnghttp2 makes no callbacks when a session ends or is deinitialized, so the objects attached to streams
    /// that never closed stay as long as the session does; one that refers back to whatever owns the session keeps
    /// both alive for good. Call this when the connection ends. Afterwards the session should not be used for
    /// those streams: a body libnghttp2 still asked for would reset its stream.
    public func releaseStreamObjects() {
        providers.removeAll()
        streamUserData.removeAll()
    }

    /// Serializes every frame that is ready to go and returns the bytes. See ``send(_:)``.
    public func send() throws -> [UInt8] {
        var bytes: [UInt8] = []
        try send { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Whether the session still wants to read from the peer (false once the connection is done, e.g. after
    /// GOAWAY both ways and every stream closed).
    public var wantsRead: Bool {
        nghttp2_session_want_read(handle) != 0
    }

    /// Whether the session has frames to send. When neither ``wantsRead`` nor `wantsWrite` holds, close the
    /// connection.
    public var wantsWrite: Bool {
        nghttp2_session_want_write(handle) != 0
    }

    /// How many frames wait in the outbound queue (deferred DATA not counted).
    public var outboundQueueSize: Int {
        nghttp2_session_get_outbound_queue_size(handle)
    }

    private func rethrowCallbackError() throws {
        if let error = callbackError {
            callbackError = nil
            throw error
        }
    }
}
