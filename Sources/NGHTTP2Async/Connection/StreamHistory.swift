import NGHTTP2

/// What a connection remembers of its streams after libnghttp2 has forgotten them, to answer frames that arrive on
/// closed streams as RFC 9113 §5.1 says, and requests on stream IDs a client skipped as §5.1.1 says. With RFC 7540
/// priorities off, libnghttp2 1.52 keeps no closed stream and silently ignores every frame on one; it also ignores
/// PRIORITY frames altogether, so their two MUSTs (§5.3.1, §6.3) are checked here too, and it checks the padding of a
/// DATA frame only on a stream it has open, so padding is checked here on every stream (§6.1, §6.2).
///
/// Memory is bounded: the last ``capacity`` closed streams (how each closed, 8 bytes apiece, allocated once the first
/// stream closes) and the last ``skippedRangeCapacity`` runs of skipped IDs (none for a client that counts up, as
/// clients do). Frames on a stream forgotten since are ignored, as libnghttp2 does.
///
/// The connection asks twice per frame: ``needsCheck(_:isOpen:)`` as its ``InboundFrameScanner`` finds the frame
/// (cheap, and usually `false`), and, for a frame that needs it, ``violation(_:isOpen:)`` once libnghttp2 has read
/// everything before that frame, so that streams closed by earlier frames of the same read count as closed.
struct StreamHistory {
    /// How a stream closed, which decides what a later DATA or HEADERS on it is (RFC 9113 §5.1, "closed").
    enum Closure: UInt8, Equatable {
        /// Both sides sent END_STREAM: any further DATA or HEADERS is a connection error STREAM_CLOSED.
        case ended = 1
        /// The peer sent RST_STREAM: a stream error STREAM_CLOSED (answered once).
        case resetByPeer = 2
        /// This side sent RST_STREAM: the peer may not know yet, so its frames are ignored.
        case resetLocally = 3
    }

    /// What a frame on a closed or skipped stream, or a PRIORITY frame, is.
    enum Violation: Equatable {
        /// Answer with RST_STREAM and this code (RFC 9113 §5.4.2).
        case stream(Int32, ErrorCode)
        /// End the connection with GOAWAY and this code (§5.4.1).
        case connection(ErrorCode, reason: String)
    }

    static let capacity = 128
    static let skippedRangeCapacity = 16

    /// Whether the peer opens odd stream IDs (it is the client).
    let peerOpensOddStreams: Bool
    /// The highest stream ID the peer has opened with HEADERS.
    private(set) var highestPeerStreamID: Int32 = 0
    /// Recently closed streams, oldest overwritten first: `id << 8 | closure`.
    private var closed: [UInt64] = []
    private var nextSlot = 0
    /// Runs of stream IDs the peer skipped: they are closed without ever having been used (§5.1.1).
    private var skipped: [ClosedRange<Int32>] = []
    /// The last four streams that END_STREAM or RST_STREAM may close within the read being scanned (a fixed ring:
    /// no allocation, four compares per frame; a 100-response read made a growing list cost 20% of the client's CPU
    /// per request). A frame on a stream closed earlier in the same read behind four other closings is not
    /// noticed and is ignored, as libnghttp2 would.
    private var closingInRead: (Int32, Int32, Int32, Int32) = (0, 0, 0, 0)
    private var nextClosing = 0

    init(peerOpensOddStreams: Bool) {
        self.peerOpensOddStreams = peerOpensOddStreams
    }

    // MARK: Record

    /// A stream closed (libnghttp2's close callback), and how.
    mutating func streamClosed(_ streamID: Int32, _ closure: Closure) {
        let entry = UInt64(UInt32(bitPattern: streamID)) << 8 | UInt64(closure.rawValue)
        if closed.count < Self.capacity {
            closed.append(entry)
        } else {
            closed[nextSlot] = entry
            nextSlot = (nextSlot + 1) % Self.capacity
        }
    }

    /// How `streamID` closed, if it is still remembered.
    func closure(of streamID: Int32) -> Closure? {
        let id = UInt64(UInt32(bitPattern: streamID))
        for entry in closed where entry >> 8 == id { return Closure(rawValue: UInt8(entry & 0xff)) }
        return nil
    }

    /// Whether the peer skipped `streamID` (opened a higher one without ever using it).
    func wasSkipped(_ streamID: Int32) -> Bool {
        skipped.contains { $0.contains(streamID) }
    }

    /// A new read begins: what the previous one closed is known from libnghttp2's callbacks by now.
    mutating func readBegins() {
        closingInRead = (0, 0, 0, 0)
    }

    private mutating func mayClose(_ streamID: Int32) {
        switch nextClosing {
        case 0: closingInRead.0 = streamID
        case 1: closingInRead.1 = streamID
        case 2: closingInRead.2 = streamID
        default: closingInRead.3 = streamID
        }
        nextClosing = (nextClosing + 1) & 3
    }

    private func mayHaveClosed(_ streamID: Int32) -> Bool {
        closingInRead.0 == streamID || closingInRead.1 == streamID || closingInRead.2 == streamID || closingInRead.3 == streamID
    }

    // MARK: Check

    private func isPeerStream(_ streamID: Int32) -> Bool {
        (streamID & 1 == 1) == peerOpensOddStreams
    }

    /// Notes what `frame` opens or may close, and says whether it must be checked once libnghttp2 has read the
    /// frames before it. `isOpen` tells whether the connection has the stream open.
    mutating func needsCheck(_ frame: InboundFrameScanner.Frame, isOpen: (Int32) -> Bool) -> Bool {
        let id = frame.streamID
        switch frame.type {
        case InboundFrameScanner.Frame.data, InboundFrameScanner.Frame.headers:
            guard id != 0 else { return false }  // libnghttp2's own check (PROTOCOL_ERROR)
            // libnghttp2 checks padding only on streams it has open; it is a property of the frame (§6.1, §6.2).
            if frame.hasBadPadding { return true }
            defer { if frame.flags & InboundFrameScanner.Frame.endStream != 0 { mayClose(id) } }
            if isPeerStream(id), id > highestPeerStreamID {
                // A new stream (HEADERS), or DATA on an idle one (libnghttp2's check).
                if frame.type == InboundFrameScanner.Frame.headers { peerOpened(id) }
                return false
            }
            if mayHaveClosed(id) { return true }
            if isOpen(id) { return false }
            return closure(of: id) != nil || (isPeerStream(id) && wasSkipped(id))
        case InboundFrameScanner.Frame.rstStream:
            if id != 0 { mayClose(id) }
            return false
        case InboundFrameScanner.Frame.priority:
            // With RFC 7540 priorities off libnghttp2 reads PRIORITY frames only for their length (§6.3's
            // FRAME_SIZE_ERROR); their other two MUSTs are checked here.
            return id == 0 || frame.dependency == id
        case InboundFrameScanner.Frame.priorityUpdate:
            // A server parses PRIORITY_UPDATE (RFC 9218 §7.1); libnghttp2 1.52 ignores one that prioritizes stream 0.
            return peerOpensOddStreams && id == 0 && frame.prioritizedStreamID == 0
        default:
            return false
        }
    }

    /// What `frame` violates, now that libnghttp2 has read everything before it; `nil` when it is fine or when
    /// libnghttp2 answers it itself (a stream it still has open). A stream error is answered once: the stream counts
    /// as reset by this side afterwards.
    mutating func violation(_ frame: InboundFrameScanner.Frame, isOpen: Bool) -> Violation? {
        let id = frame.streamID
        if frame.type == InboundFrameScanner.Frame.priorityUpdate {
            return .connection(.protocolError, reason: "PRIORITY_UPDATE for stream 0 (RFC 9218 §7.1)")
        }
        if frame.type == InboundFrameScanner.Frame.priority {
            if id == 0 { return .connection(.protocolError, reason: "PRIORITY on stream 0 (RFC 9113 §6.3)") }
            // A stream error, made a connection error (§5.4) as libnghttp2 does: the stream may be idle, and
            // RST_STREAM must not be sent on an idle stream (§6.4).
            return .connection(.protocolError, reason: "PRIORITY: stream \(id) depends on itself (RFC 9113 §5.3.1)")
        }
        let kind = frame.type == InboundFrameScanner.Frame.data ? "DATA" : "HEADERS"
        if frame.hasBadPadding {
            return .connection(.protocolError, reason: "\(kind) on stream \(id): padding of \(frame.padLength ?? 0) octets in a payload of \(frame.length) (RFC 9113 §6.1, §6.2)")
        }
        guard !isOpen else { return nil }
        switch closure(of: id) {
        case .ended:
            return .connection(.streamClosed, reason: "\(kind) on stream \(id) after it ended (RFC 9113 §5.1)")
        case .resetByPeer:
            replaceClosure(of: id, with: .resetLocally)
            return .stream(id, .streamClosed)
        case .resetLocally:
            return nil
        case nil:
            guard isPeerStream(id), wasSkipped(id) else { return nil }
            if frame.type == InboundFrameScanner.Frame.headers {
                return .connection(.protocolError, reason: "HEADERS on stream \(id), lower than one already opened (RFC 9113 §5.1.1)")
            }
            return .connection(.streamClosed, reason: "DATA on stream \(id), which was never opened and is closed (RFC 9113 §5.1.1)")
        }
    }

    private mutating func replaceClosure(of streamID: Int32, with closure: Closure) {
        let id = UInt64(UInt32(bitPattern: streamID))
        guard let index = closed.firstIndex(where: { $0 >> 8 == id }) else { return }
        closed[index] = id << 8 | UInt64(closure.rawValue)
    }

    /// Stream 1 was opened by an HTTP/1.1 Upgrade request (RFC 7540 §3.2), not by a HEADERS frame.
    mutating func streamOneOpenedByUpgrade() {
        if highestPeerStreamID == 0 { peerOpened(1) }
    }

    /// The peer opened `streamID`: the IDs it skipped on the way are closed (§5.1.1).
    private mutating func peerOpened(_ streamID: Int32) {
        let firstUnused = highestPeerStreamID == 0 ? (peerOpensOddStreams ? 1 : 2) : highestPeerStreamID + 2
        if streamID > firstUnused {
            if skipped.count == Self.skippedRangeCapacity { skipped.removeFirst() }
            skipped.append(firstUnused...(streamID - 2))
        }
        highestPeerStreamID = streamID
    }
}
