import Foundation
import NIOCore
import NIOPosix
@testable import NGHTTP2Async

// A raw-frame HTTP/2 codec for the conformance tests: it writes whatever bytes a test asks for (wrong lengths,
// flags, stream IDs and header blocks included) and reads back frames without libnghttp2 or our `Session`.

// MARK: - Constants (RFC 9113 §6, §7, §11)

/// Frame type codes (RFC 9113 §6).
enum FrameType {
    static let data: UInt8 = 0x0
    static let headers: UInt8 = 0x1
    static let priority: UInt8 = 0x2
    static let rstStream: UInt8 = 0x3
    static let settings: UInt8 = 0x4
    static let pushPromise: UInt8 = 0x5
    static let ping: UInt8 = 0x6
    static let goaway: UInt8 = 0x7
    static let windowUpdate: UInt8 = 0x8
    static let continuation: UInt8 = 0x9

    static func name(_ type: UInt8) -> String {
        switch type {
        case data: "DATA"
        case headers: "HEADERS"
        case priority: "PRIORITY"
        case rstStream: "RST_STREAM"
        case settings: "SETTINGS"
        case pushPromise: "PUSH_PROMISE"
        case ping: "PING"
        case goaway: "GOAWAY"
        case windowUpdate: "WINDOW_UPDATE"
        case continuation: "CONTINUATION"
        default: "type 0x\(String(type, radix: 16))"
        }
    }
}

/// Frame flags (RFC 9113 §6).
enum FrameFlag {
    static let endStream: UInt8 = 0x1
    static let ack: UInt8 = 0x1
    static let endHeaders: UInt8 = 0x4
    static let padded: UInt8 = 0x8
    static let priority: UInt8 = 0x20
}

/// SETTINGS identifiers (RFC 9113 §6.5.2).
enum SettingID {
    static let headerTableSize: UInt16 = 0x1
    static let enablePush: UInt16 = 0x2
    static let maxConcurrentStreams: UInt16 = 0x3
    static let initialWindowSize: UInt16 = 0x4
    static let maxFrameSize: UInt16 = 0x5
    static let maxHeaderListSize: UInt16 = 0x6
}

/// An error code as it is on the wire (RFC 9113 §7).
struct WireError: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    var rawValue: UInt32
    init(rawValue: UInt32) { self.rawValue = rawValue }

    static let noError = WireError(rawValue: 0x0)
    static let protocolError = WireError(rawValue: 0x1)
    static let internalError = WireError(rawValue: 0x2)
    static let flowControlError = WireError(rawValue: 0x3)
    static let settingsTimeout = WireError(rawValue: 0x4)
    static let streamClosed = WireError(rawValue: 0x5)
    static let frameSizeError = WireError(rawValue: 0x6)
    static let refusedStream = WireError(rawValue: 0x7)
    static let cancel = WireError(rawValue: 0x8)
    static let compressionError = WireError(rawValue: 0x9)
    static let connectError = WireError(rawValue: 0xa)
    static let enhanceYourCalm = WireError(rawValue: 0xb)
    static let inadequateSecurity = WireError(rawValue: 0xc)
    static let http11Required = WireError(rawValue: 0xd)

    var description: String {
        let names = [
            "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
            "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
        ]
        return rawValue < names.count ? names[Int(rawValue)] : "0x\(String(rawValue, radix: 16))"
    }
}

/// The client connection preface (RFC 9113 §3.4).
let connectionPreface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

// MARK: - Frames

/// An HTTP/2 frame as it is on the wire: the 9-byte header and the payload. `length` is what the header says, which
/// a test may set to something other than `payload.count` on purpose; `streamID` is the whole 32-bit word when
/// encoding (so the reserved bit can be set) and the 31-bit identifier when parsed.
struct RawFrame: CustomStringConvertible, Sendable {
    var length: Int
    var type: UInt8
    var flags: UInt8
    var streamID: UInt32
    var payload: [UInt8]

    init(length: Int? = nil, type: UInt8, flags: UInt8 = 0, streamID: UInt32, payload: [UInt8] = []) {
        self.length = length ?? payload.count
        self.type = type
        self.flags = flags
        self.streamID = streamID
        self.payload = payload
    }

    /// The frame's bytes: the header as given (even a `length` that does not match the payload) and the payload.
    var bytes: [UInt8] {
        [UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length), type, flags]
            + be32(streamID) + payload
    }

    /// Parses complete frames from the start of `bytes` (a trailing partial frame is left out).
    static func parse(_ bytes: [UInt8]) -> [RawFrame] {
        var frames: [RawFrame] = []
        var offset = 0
        while let (frame, size) = parseOne(bytes, at: offset) {
            frames.append(frame)
            offset += size
        }
        return frames
    }

    /// The complete frame at `offset` and its size on the wire, if there is one.
    static func parseOne(_ bytes: [UInt8], at offset: Int) -> (RawFrame, Int)? {
        guard bytes.count - offset >= 9 else { return nil }
        let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
        guard bytes.count - offset - 9 >= length else { return nil }
        let streamID = bytes[(offset + 5)..<(offset + 9)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7fff_ffff
        let frame = RawFrame(
            length: length, type: bytes[offset + 3], flags: bytes[offset + 4], streamID: streamID,
            payload: Array(bytes[(offset + 9)..<(offset + 9 + length)]))
        return (frame, 9 + length)
    }

    private func word(at index: Int) -> UInt32? {
        guard payload.count >= index + 4 else { return nil }
        return payload[index..<(index + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    func has(_ flag: UInt8) -> Bool { flags & flag == flag }

    var goawayLastStreamID: UInt32? { type == FrameType.goaway ? word(at: 0).map { $0 & 0x7fff_ffff } : nil }
    var goawayErrorCode: UInt32? { type == FrameType.goaway ? word(at: 4) : nil }
    var rstErrorCode: UInt32? { type == FrameType.rstStream ? word(at: 0) : nil }
    /// The error code of a GOAWAY or RST_STREAM.
    var errorCode: WireError? { (goawayErrorCode ?? rstErrorCode).map(WireError.init(rawValue:)) }
    var windowIncrement: UInt32? { type == FrameType.windowUpdate ? word(at: 0).map { $0 & 0x7fff_ffff } : nil }
    var isSettings: Bool { type == FrameType.settings && !has(FrameFlag.ack) }
    var isSettingsAck: Bool { type == FrameType.settings && has(FrameFlag.ack) }
    var isPingAck: Bool { type == FrameType.ping && has(FrameFlag.ack) }
    var endsStream: Bool { (type == FrameType.data || type == FrameType.headers) && has(FrameFlag.endStream) }

    /// The parameters of a SETTINGS frame.
    var settings: [(id: UInt16, value: UInt32)] {
        guard type == FrameType.settings else { return [] }
        return stride(from: 0, to: payload.count - payload.count % 6, by: 6).map { index in
            (UInt16(payload[index]) << 8 | UInt16(payload[index + 1]), word(at: index + 2)!)
        }
    }

    /// The header block fragment of a HEADERS, PUSH_PROMISE or CONTINUATION frame (padding and priority removed).
    var headerBlockFragment: [UInt8] {
        var start = 0
        var end = payload.count
        if type == FrameType.headers || type == FrameType.pushPromise, has(FrameFlag.padded), let pad = payload.first {
            start = 1
            end -= Int(pad)
        }
        if type == FrameType.headers, has(FrameFlag.priority) { start += 5 }
        if type == FrameType.pushPromise { start += 4 }
        guard start <= end, end <= payload.count else { return [] }
        return Array(payload[start..<end])
    }

    /// The DATA payload without padding.
    var dataPayload: [UInt8] {
        guard type == FrameType.data else { return [] }
        guard has(FrameFlag.padded), let pad = payload.first else { return payload }
        guard 1 + Int(pad) <= payload.count else { return [] }
        return Array(payload[1..<(payload.count - Int(pad))])
    }

    var description: String {
        var text = "\(FrameType.name(type))(stream \(streamID), flags 0x\(String(flags, radix: 16)), length \(length)"
        switch type {
        case FrameType.goaway: text += ", last stream \(goawayLastStreamID ?? 0), \(errorCode.map { "\($0)" } ?? "?")"
        case FrameType.rstStream: text += ", \(errorCode.map { "\($0)" } ?? "?")"
        case FrameType.windowUpdate: text += ", increment \(windowIncrement ?? 0)"
        case FrameType.settings where !has(FrameFlag.ack): text += ", \(settings.map { "\($0.id)=\($0.value)" })"
        default: break
        }
        return text + ")"
    }

    // MARK: Builders (every one can be mutated afterwards: length, flags, stream ID, payload)

    static func data(_ stream: UInt32, _ body: [UInt8], endStream: Bool = false, padLength: UInt8? = nil) -> RawFrame {
        var flags: UInt8 = endStream ? FrameFlag.endStream : 0
        var payload = body
        if let padLength {
            flags |= FrameFlag.padded
            payload = [padLength] + body + Array(repeating: 0, count: Int(padLength))
        }
        return RawFrame(type: FrameType.data, flags: flags, streamID: stream, payload: payload)
    }

    struct PrioritySpec: Sendable {
        var dependency: UInt32
        var exclusive = false
        var weight: UInt8 = 15
        var bytes: [UInt8] { be32(dependency | (exclusive ? 0x8000_0000 : 0)) + [weight] }
    }

    static func headers(
        _ stream: UInt32, _ block: [UInt8], endStream: Bool = false, endHeaders: Bool = true, padLength: UInt8? = nil,
        priority: PrioritySpec? = nil
    ) -> RawFrame {
        var flags: UInt8 = (endStream ? FrameFlag.endStream : 0) | (endHeaders ? FrameFlag.endHeaders : 0)
        var payload: [UInt8] = []
        if let priority {
            flags |= FrameFlag.priority
            payload = priority.bytes
        }
        payload += block
        if let padLength {
            flags |= FrameFlag.padded
            payload = [padLength] + payload + Array(repeating: 0, count: Int(padLength))
        }
        return RawFrame(type: FrameType.headers, flags: flags, streamID: stream, payload: payload)
    }

    static func priority(_ stream: UInt32, dependsOn dependency: UInt32, exclusive: Bool = false, weight: UInt8 = 15) -> RawFrame {
        RawFrame(
            type: FrameType.priority, streamID: stream,
            payload: PrioritySpec(dependency: dependency, exclusive: exclusive, weight: weight).bytes)
    }

    static func rstStream(_ stream: UInt32, _ code: WireError) -> RawFrame {
        RawFrame(type: FrameType.rstStream, streamID: stream, payload: be32(code.rawValue))
    }

    static func settings(_ entries: [(UInt16, UInt32)] = []) -> RawFrame {
        RawFrame(type: FrameType.settings, streamID: 0, payload: entries.flatMap { be16($0.0) + be32($0.1) })
    }

    static let settingsAck = RawFrame(type: FrameType.settings, flags: FrameFlag.ack, streamID: 0)

    static func pushPromise(_ stream: UInt32, promised: UInt32, _ block: [UInt8], endHeaders: Bool = true) -> RawFrame {
        RawFrame(
            type: FrameType.pushPromise, flags: endHeaders ? FrameFlag.endHeaders : 0, streamID: stream,
            payload: be32(promised) + block)
    }

    static func ping(_ data: [UInt8] = Array("conform!".utf8), ack: Bool = false) -> RawFrame {
        RawFrame(type: FrameType.ping, flags: ack ? FrameFlag.ack : 0, streamID: 0, payload: data)
    }

    static func goaway(lastStreamID: UInt32, _ code: WireError, debug: [UInt8] = []) -> RawFrame {
        RawFrame(type: FrameType.goaway, streamID: 0, payload: be32(lastStreamID) + be32(code.rawValue) + debug)
    }

    static func windowUpdate(_ stream: UInt32, _ increment: UInt32) -> RawFrame {
        RawFrame(type: FrameType.windowUpdate, streamID: stream, payload: be32(increment))
    }

    static func continuation(_ stream: UInt32, _ block: [UInt8], endHeaders: Bool = true) -> RawFrame {
        RawFrame(type: FrameType.continuation, flags: endHeaders ? FrameFlag.endHeaders : 0, streamID: stream, payload: block)
    }

    /// A frame of a type this endpoint does not know (RFC 9113 §4.1, §5.5).
    static func unknown(type: UInt8 = 0xff, flags: UInt8 = 0, _ stream: UInt32 = 0, _ payload: [UInt8] = Array("unknown".utf8)) -> RawFrame {
        RawFrame(type: type, flags: flags, streamID: stream, payload: payload)
    }
}

func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
func be32(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)] }

/// Several frames as one write (one TCP segment, one TLS record on a small write), so that the peer reads them in
/// one go.
func wire(_ frames: RawFrame...) -> [UInt8] { frames.flatMap(\.bytes) }
func wire(_ frames: [RawFrame]) -> [UInt8] { frames.flatMap(\.bytes) }

// MARK: - HPACK (RFC 7541), encoder side plus a tiny decoder for response status

enum HPACK {
    /// An integer with an N-bit prefix (RFC 7541 §5.1); `pattern` holds the bits above the prefix.
    static func integer(_ value: Int, prefixBits: Int, pattern: UInt8) -> [UInt8] {
        let limit = (1 << prefixBits) - 1
        if value < limit { return [pattern | UInt8(value)] }
        var bytes: [UInt8] = [pattern | UInt8(limit)]
        var rest = value - limit
        while rest >= 128 {
            bytes.append(UInt8(rest % 128 + 128))
            rest /= 128
        }
        bytes.append(UInt8(rest))
        return bytes
    }

    /// A string literal without Huffman coding (RFC 7541 §5.2, H = 0).
    static func string(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        return integer(bytes.count, prefixBits: 7, pattern: 0) + bytes
    }

    /// A string literal with H = 1 and the given (possibly invalid) Huffman-coded octets.
    static func huffmanString(_ coded: [UInt8]) -> [UInt8] {
        integer(coded.count, prefixBits: 7, pattern: 0x80) + coded
    }

    /// Indexed header field (RFC 7541 §6.1).
    static func indexed(_ index: Int) -> [UInt8] { integer(index, prefixBits: 7, pattern: 0x80) }

    /// Literal header field without indexing, new name (RFC 7541 §6.2.2).
    static func literal(_ name: String, _ value: String) -> [UInt8] { [0x00] + string(name) + string(value) }

    /// Literal header field without indexing, indexed name (RFC 7541 §6.2.2).
    static func literal(nameIndex: Int, _ value: String) -> [UInt8] { integer(nameIndex, prefixBits: 4, pattern: 0x00) + string(value) }

    /// Literal header field with incremental indexing, new name (RFC 7541 §6.2.1).
    static func literalIndexing(_ name: String, _ value: String) -> [UInt8] { [0x40] + string(name) + string(value) }

    /// Literal header field never indexed, new name (RFC 7541 §6.2.3).
    static func literalNeverIndexed(_ name: String, _ value: String) -> [UInt8] { [0x10] + string(name) + string(value) }

    /// Dynamic table size update (RFC 7541 §6.3).
    static func sizeUpdate(_ size: Int) -> [UInt8] { integer(size, prefixBits: 5, pattern: 0x20) }

    /// Every field as a literal without indexing, new name.
    static func block(_ fields: [(String, String)]) -> [UInt8] { fields.flatMap { literal($0.0, $0.1) } }

    /// The static table entries for `:status` (RFC 7541 Appendix A, indices 8–14).
    static let staticStatuses = [8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500]

    /// The `:status` of a response header block when its first field is an indexed static `:status` entry or a
    /// literal with the indexed name `:status` and a plain (non-Huffman) value; `nil` otherwise. Good enough for
    /// what libnghttp2 sends for common statuses (`0x88` for 200), not a general decoder.
    static func status(of block: [UInt8]) -> Int? {
        var block = block[...]
        // Dynamic table size updates may come first.
        while let first = block.first, first & 0xe0 == 0x20 {
            block = block.dropFirst()
            if first & 0x1f == 0x1f { while let next = block.first, next & 0x80 != 0 { block = block.dropFirst() }; block = block.dropFirst() }
        }
        guard let first = block.first else { return nil }
        if first & 0x80 != 0 { return staticStatuses[Int(first & 0x7f)] }
        let nameIndex: Int
        if first & 0xc0 == 0x40 { nameIndex = Int(first & 0x3f) } else if first & 0xf0 <= 0x10 { nameIndex = Int(first & 0x0f) } else { return nil }
        guard (8...14).contains(nameIndex), block.count >= 2 else { return nil }
        let lengthByte = block[block.startIndex + 1]
        guard lengthByte & 0x80 == 0, block.count >= 2 + Int(lengthByte) else { return nil }
        let value = block[(block.startIndex + 2)..<(block.startIndex + 2 + Int(lengthByte))]
        return Int(String(decoding: value, as: UTF8.self))
    }
}

// MARK: - A raw connection (client or server side, TCP or TLS below)

/// A connection that records everything it receives, for writing raw bytes and reading raw frames.
final class RawConnection: Sendable {
    final class Collector: ChannelInboundHandler, @unchecked Sendable {  // touched on the event loop, read under the lock
        typealias InboundIn = ByteBuffer
        let lock = NSLock()
        var bytes: [UInt8] = []
        /// How far `nextFrame` has read in `bytes`.
        var cursor = 0
        var closed = false
        var handshake: TLSHandshakeCompleted?
        private var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        private var lastWaiter = 0

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            let received = buffer.readBytes(length: buffer.readableBytes) ?? []
            lock.withLock { bytes += received }
            wake()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let completed = event as? TLSHandshakeCompleted {
                lock.withLock { handshake = completed }
                wake()
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            lock.withLock { closed = true }
            wake()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        private func wake() {
            let waiting = lock.withLock {
                let waiting = waiters
                waiters = [:]
                return waiting
            }
            for waiter in waiting.values { waiter.resume() }
        }

        /// Returns once something new arrived (more than `seen` bytes, a handshake, or the close), or `timeout` passed.
        func waitForNews(seen: Int, timeout: Duration, on eventLoop: any EventLoop) async {
            let id = lock.withLock {
                lastWaiter += 1
                return lastWaiter
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = lock.withLock { () -> Bool in
                    if bytes.count > seen || closed { return true }
                    waiters[id] = continuation
                    return false
                }
                if now { return continuation.resume() }
                eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [self] in
                    lock.withLock { waiters.removeValue(forKey: id) }?.resume()
                }
            }
        }
    }

    final class Flag: @unchecked Sendable {
        let lock = NSLock()
        var value = false
        func set() { lock.withLock { value = true } }
        var isSet: Bool { lock.withLock { value } }
    }

    let channel: any Channel
    let collector: Collector

    init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// Connects to 127.0.0.1:`port`, over TLS (our `TLSHandler`, client role, ALPN from the context) when `tls` is
    /// given; then waits for the handshake, and throws if it failed.
    static func connect(port: Int, tls: TLSContext? = nil) async throws -> RawConnection {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(TLSHandler(context: tls, role: .client, serverHostname: "localhost"))
                    }
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        let connection = RawConnection(channel: channel, collector: collector)
        if tls != nil {
            let deadline = ContinuousClock.now + .seconds(10)
            while collector.lock.withLock({ collector.handshake == nil && !collector.closed }), ContinuousClock.now < deadline {
                await collector.waitForNews(seen: Int.max, timeout: deadline - ContinuousClock.now, on: channel.eventLoop)
            }
            guard let handshake = collector.lock.withLock({ collector.handshake }) else {
                await connection.close()
                throw RawConnectionError(description: "the TLS handshake with 127.0.0.1:\(port) did not complete")
            }
            guard handshake.negotiatedProtocol == "h2" else {
                await connection.close()
                throw RawConnectionError(description: "ALPN chose \(handshake.negotiatedProtocol ?? "nothing"), not h2")
            }
        }
        return connection
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).get()
    }

    /// Sends the frames in one write.
    func send(_ frames: RawFrame...) async throws { try await send(wire(frames)) }

    /// Waits until the peer closes the connection; returns false (and closes it) if that takes longer than `timeout`.
    func waitForClose(timeout: Duration) async -> Bool {
        let timedOut = Flag()
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            timedOut.set()
            channel.close(promise: nil)
        }
        try? await channel.closeFuture.get()
        timer.cancel()
        return !timedOut.isSet
    }

    func close() async {
        try? await channel.close()
    }

    var received: [UInt8] { collector.lock.withLock { collector.bytes } }
    var isClosed: Bool { collector.lock.withLock { collector.closed } }

    /// What `nextFrame` found.
    enum Event: CustomStringConvertible {
        case frame(RawFrame)
        /// The peer closed the connection (after every complete frame was read).
        case closed
        case timedOut

        var description: String {
            switch self {
            case .frame(let frame): "\(frame)"
            case .closed: "connection closed"
            case .timedOut: "nothing"
            }
        }
    }

    /// The next complete frame not read yet, the close, or `.timedOut` when neither came within `timeout`.
    func nextFrame(timeout: Duration) async -> Event {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (event, seen): (Event?, Int) = collector.lock.withLock {
                if let (frame, size) = RawFrame.parseOne(collector.bytes, at: collector.cursor) {
                    collector.cursor += size
                    return (.frame(frame), collector.bytes.count)
                }
                return (collector.closed ? .closed : nil, collector.bytes.count)
            }
            if let event { return event }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return .timedOut }
            await collector.waitForNews(seen: seen, timeout: left, on: channel.eventLoop)
        }
    }

    /// Server side: reads the 24-byte client preface; false if something else (or nothing) came.
    func readPreface(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (have, seen): (Bool?, Int) = collector.lock.withLock {
                if collector.bytes.count >= connectionPreface.count {
                    guard Array(collector.bytes[0..<connectionPreface.count]) == connectionPreface else { return (false, 0) }
                    collector.cursor = connectionPreface.count
                    return (true, 0)
                }
                return (collector.closed ? false : nil, collector.bytes.count)
            }
            if let have { return have }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return false }
            await collector.waitForNews(seen: seen, timeout: left, on: channel.eventLoop)
        }
    }
}

struct RawConnectionError: Error, CustomStringConvertible {
    var description: String
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

// MARK: - A raw server (for misbehaving towards our ClientSession)

/// A listening socket on 127.0.0.1 whose accepted connections are ``RawConnection``s.
final class RawServer: Sendable {
    let channel: any Channel
    private let accepted: AsyncStream<RawConnection>
    private let continuation: AsyncStream<RawConnection>.Continuation

    private init(channel: any Channel, accepted: AsyncStream<RawConnection>, continuation: AsyncStream<RawConnection>.Continuation) {
        self.channel = channel
        self.accepted = accepted
        self.continuation = continuation
    }

    static func start() async throws -> RawServer {
        let (stream, continuation) = AsyncStream.makeStream(of: RawConnection.self)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    let collector = RawConnection.Collector()
                    try child.pipeline.syncOperations.addHandler(collector)
                    continuation.yield(RawConnection(channel: child, collector: collector))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return RawServer(channel: channel, accepted: stream, continuation: continuation)
    }

    var port: Int { channel.localAddress?.port ?? 0 }

    /// The next accepted connection (in order).
    func accept() async throws -> RawConnection {
        var iterator = accepted.makeAsyncIterator()
        guard let connection = await iterator.next() else { throw RawConnectionError(description: "the raw server stopped") }
        return connection
    }

    func close() async {
        continuation.finish()
        try? await channel.close()
    }
}
