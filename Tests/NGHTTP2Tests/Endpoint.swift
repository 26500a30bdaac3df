@testable import NGHTTP2

/// One side of an in-memory HTTP/2 connection: a session plus a record of everything it saw.
final class Endpoint {
    let session: Session
    var received: [Frame] = []
    var sent: [Frame] = []
    var notSent: [(Frame, NGHTTP2Error)] = []
    var invalid: [(Frame, NGHTTP2Error)] = []
    var bodies: [Int32: [UInt8]] = [:]
    var fieldBlocks: [Int32: [[HeaderField]]] = [:]
    var closed: [Int32: ErrorCode] = [:]
    /// Whether to credit received DATA at once (only meaningful with `noAutoWindowUpdate`).
    var consumesOnArrival = true
    /// Called for every complete field block received (after it is recorded).
    var onFieldBlock: ((Endpoint, Int32, HeadersCategory, [HeaderField], FrameFlags) throws -> Void)?

    init(_ role: Session.Role, options: Session.Options = Session.Options(), settings: [Setting]? = nil) throws {
        session = try Session(role: role, options: options)
        let manual = options.noAutoWindowUpdate
        session.callbacks.onFrameReceived = { [unowned self] frame in
            received.append(frame)
            switch frame.payload {
            case .headers(let category, let fields, _, _):
                fieldBlocks[frame.streamID, default: []].append(fields)
                try onFieldBlock?(self, frame.streamID, category, fields, frame.flags)
            case .pushPromise(let promised, let fields):
                fieldBlocks[promised, default: []].append(fields)
            default:
                break
            }
        }
        session.callbacks.onDataChunk = { [unowned self] streamID, data in
            bodies[streamID, default: []].append(contentsOf: data)
            if manual, consumesOnArrival { try session.consume(streamID: streamID, count: data.count) }
        }
        session.callbacks.onFrameSent = { [unowned self] frame in sent.append(frame) }
        session.callbacks.onFrameNotSent = { [unowned self] frame, error in notSent.append((frame, error)) }
        session.callbacks.onInvalidFrameReceived = { [unowned self] frame, error in invalid.append((frame, error)) }
        session.callbacks.onStreamClosed = { [unowned self] streamID, code in closed[streamID] = code }
        try session.submitSettings(settings ?? (role == .server ? [Setting(.maxConcurrentStreams, 100)] : []))
    }

    /// The first field block received on a stream.
    func head(_ streamID: Int32) -> [HeaderField] { fieldBlocks[streamID]?.first ?? [] }

    func receivedFrames(_ type: FrameType) -> [Frame] { received.filter { $0.type == type } }
    func sentFrames(_ type: FrameType) -> [Frame] { sent.filter { $0.type == type } }
}

/// Moves bytes both ways until neither side has anything to send. Returns the number of round trips.
@discardableResult
func exchange(_ a: Endpoint, _ b: Endpoint, chunkSize: Int? = nil, maxRounds: Int = 10_000) throws -> Int {
    var rounds = 0
    while rounds < maxRounds {
        rounds += 1
        let fromA = try a.session.send()
        try deliver(fromA, to: b, chunkSize: chunkSize)
        let fromB = try b.session.send()
        try deliver(fromB, to: a, chunkSize: chunkSize)
        if fromA.isEmpty && fromB.isEmpty { return rounds }
    }
    return rounds
}

func deliver(_ bytes: [UInt8], to endpoint: Endpoint, chunkSize: Int?) throws {
    guard let chunkSize else {
        if !bytes.isEmpty { try endpoint.session.receive(bytes) }
        return
    }
    var offset = 0
    while offset < bytes.count {
        let end = min(offset + chunkSize, bytes.count)
        try endpoint.session.receive(Array(bytes[offset..<end]))
        offset = end
    }
}

let getRequest: [HeaderField] = [[":method", "GET"], [":scheme", "http"], [":authority", "localhost"], [":path", "/"]]

func request(_ method: String, _ path: String, _ extra: [HeaderField] = []) -> [HeaderField] {
    [[":method", method], [":scheme", "http"], [":authority", "localhost"], [":path", path]] + extra
}

/// Deterministic pseudo-random bytes (SplitMix64), so failures replay.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func pattern(_ count: Int, seed: UInt8 = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}
