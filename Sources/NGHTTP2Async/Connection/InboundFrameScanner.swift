/// Finds the frame headers (RFC 9113 §4.1) in the bytes a peer sends, before libnghttp2 reads them, so that the
/// connection can check what libnghttp2 1.52 does not (see ``StreamHistory``). It reads only headers, the four bytes
/// of a PRIORITY frame that name the stream depended on, and the Pad Length of a padded DATA or HEADERS frame; payloads
/// are skipped. A header split across reads is put together from its pieces.
struct InboundFrameScanner {
    /// A frame's header, with what the checks need of its payload.
    struct Frame: Equatable {
        var length: Int
        var type: UInt8
        var flags: UInt8
        var streamID: Int32
        /// For a PRIORITY frame of the right length (5): the stream it depends on (RFC 9113 §6.3).
        var dependency: Int32?
        /// For a padded DATA or HEADERS frame with a payload: its Pad Length field (RFC 9113 §6.1, §6.2).
        var padLength: Int?
        /// For a PRIORITY_UPDATE frame of at least 4 bytes: the stream it prioritizes (RFC 9218 §7.1).
        var prioritizedStreamID: Int32?

        static let data: UInt8 = 0x0
        static let headers: UInt8 = 0x1
        static let priority: UInt8 = 0x2
        static let rstStream: UInt8 = 0x3
        static let priorityUpdate: UInt8 = 0x10
        static let endStream: UInt8 = 0x1
        static let padded: UInt8 = 0x8

        /// Whether the padding leaves no room for the payload it pads: "If the length of the padding is the length of
        /// the frame payload or greater, the recipient MUST treat this as a connection error (Section 5.4.1) of type
        /// PROTOCOL_ERROR" (RFC 9113 §6.1, §6.2).
        var hasBadPadding: Bool {
            guard let padLength else { return false }
            return padLength >= length
        }
    }

    /// Bytes to pass over before the next header: the client's preface (on a server), then each payload.
    private var skip: Int
    /// A header (and PRIORITY field) that began in an earlier read.
    private var pieces: [UInt8] = []

    /// A scanner for what a client sends (`skipsPreface`: its 24-byte preface comes first) or a server sends.
    init(skipsPreface: Bool) {
        skip = skipsPreface ? 24 : 0
    }

    /// Calls `visit` with each frame whose header ends in `bytes`, and the offset in `bytes` where that frame begins
    /// (0 when it began in an earlier read). `visit` returns `false` to stop.
    mutating func scan(_ bytes: UnsafeRawBufferPointer, _ visit: (Frame, _ start: Int) -> Bool) {
        var index = 0
        let end = bytes.count
        while index < end {
            if skip > 0 {
                let count = min(skip, end - index)
                skip -= count
                index += count
                continue
            }
            let start = index
            let frame: Frame
            if pieces.isEmpty, end - index >= 9, let whole = Self.frame(in: bytes, at: index, available: end - index) {
                frame = whole
            } else {
                // Gather the header (9 bytes, and the payload bytes the checks read) across reads.
                var needed = pieces.count < 9 ? 9 : pieces.withUnsafeBytes { 9 + Self.payloadBytesRead(header: $0, at: 0) }
                while true {
                    let count = min(needed - pieces.count, end - index)
                    pieces.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<(index + count)]))
                    index += count
                    if pieces.count < needed { return }
                    let parsed = pieces.withUnsafeBytes { Self.frame(in: $0, at: 0, available: $0.count) }
                    if let parsed {
                        frame = parsed
                        break
                    }
                    needed = pieces.withUnsafeBytes { 9 + Self.payloadBytesRead(header: $0, at: 0) }
                }
                skip = frame.length - (pieces.count - 9)  // the payload bytes read were part of the payload
                pieces.removeAll(keepingCapacity: true)
                if !visit(frame, 0) { return }
                continue
            }
            index += 9
            skip = frame.length
            if !visit(frame, start) { return }
        }
    }

    /// How many payload bytes the checks read of the frame whose header is at `offset`: a PRIORITY frame's 4-byte
    /// dependency, a PRIORITY_UPDATE frame's 4-byte prioritized stream, a padded DATA or HEADERS frame's 1-byte Pad
    /// Length.
    private static func payloadBytesRead(header bytes: UnsafeRawBufferPointer, at offset: Int) -> Int {
        let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
        switch bytes[offset + 3] {
        case Frame.priority: return length == 5 ? 4 : 0
        case Frame.priorityUpdate: return length >= 4 ? 4 : 0
        case Frame.data, Frame.headers: return bytes[offset + 4] & Frame.padded != 0 && length >= 1 ? 1 : 0
        default: return 0
        }
    }

    /// The frame whose header is at `offset`, or `nil` when the payload bytes the checks read are not all there.
    private static func frame(in bytes: UnsafeRawBufferPointer, at offset: Int, available: Int) -> Frame? {
        let extra = payloadBytesRead(header: bytes, at: offset)
        guard available >= 9 + extra else { return nil }
        let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
        let type = bytes[offset + 3]
        var frame = Frame(length: length, type: type, flags: bytes[offset + 4], streamID: Self.streamID(bytes, offset + 5))
        if extra == 4, type == Frame.priorityUpdate {
            frame.prioritizedStreamID = Self.streamID(bytes, offset + 9)
        } else if extra == 4 {
            frame.dependency = Self.streamID(bytes, offset + 9)
        } else if extra == 1 {
            frame.padLength = Int(bytes[offset + 9])
        }
        return frame
    }

    /// A 31-bit stream identifier (the reserved or exclusive bit masked off).
    private static func streamID(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> Int32 {
        let value = UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
        return Int32(bitPattern: value & 0x7fff_ffff)
    }
}
