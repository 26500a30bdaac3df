/// The source of a stream's outgoing DATA frames.
///
/// libnghttp2 asks the provider for bytes whenever flow control lets the stream send. The provider copies
/// up to `buffer.count` bytes into the buffer and says how many it wrote and whether that was the end; or it
/// says ``Result/deferred`` when it has nothing yet (call ``Session/resumeData(streamID:)`` once it has); or,
/// with ``DataFlags/noCopy``, it says how many bytes it will write itself when the frame goes out
/// (zero-copy: ``init(read:writeZeroCopy:)``).
public struct DataProvider {
    /// What a read produced.
    public enum Result {
        /// `count` bytes are ready (copied into the buffer, or, with ``DataFlags/noCopy``, to be written by
        /// the zero-copy writer), with `flags` saying whether this is the end.
        case bytes(Int, flags: DataFlags = [])
        /// Nothing to send now. The stream waits until ``Session/resumeData(streamID:)`` is called.
        case deferred
    }

    /// The read closure: fill `buffer` (at most `buffer.count` bytes) for the stream `streamID`.
    public typealias Read = (_ buffer: UnsafeMutableRawBufferPointer, _ streamID: Int32) throws -> Result

    /// The zero-copy writer: emit exactly `count` payload bytes for the stream `streamID` through `output`.
    public typealias WriteZeroCopy =
        (_ count: Int, _ streamID: Int32, _ output: (UnsafeRawBufferPointer) -> Void) throws -> Void

    /// Where the bytes come from: one reference, so a provider is copied (on each read libnghttp2 asks for) with one
    /// retain. Closures are kept in a ``ClosureSource``.
    let source: any DataSource

    /// The zero-copy writer, if the provider was made with one.
    var writeZeroCopy: WriteZeroCopy? { (source as? ClosureSource)?.writeZeroCopy }

    /// Creates a provider that copies bytes into libnghttp2's frame buffer.
    public init(read: @escaping Read) {
        self.source = ClosureSource(read: read, writeZeroCopy: nil)
    }

    /// Creates a zero-copy provider: `read` only says how many bytes are ready (returning ``DataFlags/noCopy``
    /// among its flags for those it will write itself), and `writeZeroCopy` writes them when the DATA frame is
    /// sent, straight into the session's output after the frame header.
    public init(read: @escaping Read, writeZeroCopy: @escaping WriteZeroCopy) {
        self.source = ClosureSource(read: read, writeZeroCopy: writeZeroCopy)
    }

    /// Creates a provider that copies bytes from `source` into libnghttp2's frame buffer. The provider keeps
    /// `source` until the stream's body is done; no closure is made (cheaper than ``init(read:)`` per body).
    public init(source: any DataSource) {
        self.source = source
    }

    init(
        sessionRead: @escaping (Session, UnsafeMutableRawBufferPointer, Int32) throws -> Result,
        writeZeroCopy: WriteZeroCopy? = nil
    ) {
        self.source = ClosureSource(sessionRead: sessionRead, writeZeroCopy: writeZeroCopy)
    }

    @inline(__always)
    func read(_ session: Session, _ buffer: UnsafeMutableRawBufferPointer, _ streamID: Int32) throws -> Result {
        try source.read(into: buffer, streamID: streamID, session: session)
    }
}

/// The source of a provider made from closures.
final class ClosureSource: DataSource {
    private let read: DataProvider.Read?
    private let sessionRead: ((Session, UnsafeMutableRawBufferPointer, Int32) throws -> DataProvider.Result)?
    let writeZeroCopy: DataProvider.WriteZeroCopy?

    init(read: @escaping DataProvider.Read, writeZeroCopy: DataProvider.WriteZeroCopy?) {
        self.read = read
        self.sessionRead = nil
        self.writeZeroCopy = writeZeroCopy
    }

    init(
        sessionRead: @escaping (Session, UnsafeMutableRawBufferPointer, Int32) throws -> DataProvider.Result,
        writeZeroCopy: DataProvider.WriteZeroCopy?
    ) {
        self.read = nil
        self.sessionRead = sessionRead
        self.writeZeroCopy = writeZeroCopy
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, streamID: Int32, session: Session) throws -> DataProvider.Result {
        if let read { return try read(buffer, streamID) }
        return try sessionRead!(session, buffer, streamID)
    }
}

/// An object that fills a stream's DATA frames: the allocation-free alternative to a ``DataProvider`` closure,
/// for a body that is an object anyway (``DataProvider/init(source:)``).
public protocol DataSource: AnyObject {
    /// Fills `buffer` (at most `buffer.count` bytes) for the stream `streamID`, with the contract of
    /// ``DataProvider/Read``. `session` is the session asking, e.g. to submit trailers with
    /// ``Session/submitTrailer(streamID:fields:)`` before answering ``DataFlags/noEndStream``.
    func read(into buffer: UnsafeMutableRawBufferPointer, streamID: Int32, session: Session) throws -> DataProvider.Result
}

extension DataProvider {
    /// A provider that sends `bytes` and ends the stream, or, when `trailers` are given, sends them after the
    /// last DATA frame with END_STREAM on the trailers.
    public static func bytes(_ bytes: [UInt8], trailers: [HeaderField] = []) -> DataProvider {
        var offset = 0
        return DataProvider(sessionRead: { session, buffer, streamID in
            let count = min(buffer.count, bytes.count - offset)
            if count > 0 {
                bytes.withUnsafeBytes { source in
                    buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: count)
                }
                offset += count
            }
            guard offset == bytes.count else { return .bytes(count) }
            if trailers.isEmpty { return .bytes(count, flags: .endOfData) }
            try session.submitTrailer(streamID: streamID, fields: trailers)
            return .bytes(count, flags: [.endOfData, .noEndStream])
        })
    }

    /// A zero-copy provider for `bytes`: libnghttp2 never copies them into its frame buffer; each DATA payload is
    /// written from `bytes` straight into the session's output.
    public static func zeroCopy(_ bytes: [UInt8]) -> DataProvider {
        var announced = 0
        var written = 0
        return DataProvider(
            read: { buffer, _ in
                let count = min(buffer.count, bytes.count - announced)
                announced += count
                return .bytes(count, flags: announced == bytes.count ? [.endOfData, .noCopy] : .noCopy)
            },
            writeZeroCopy: { count, _, output in
                bytes.withUnsafeBytes { source in
                    output(UnsafeRawBufferPointer(rebasing: source[written..<(written + count)]))
                }
                written += count
            }
        )
    }
}

/// What a ``DataProvider`` says about the bytes it returned (`nghttp2_data_flag`).
public struct DataFlags: OptionSet, Hashable, Sendable {
    /// The flag bits.
    public let rawValue: UInt32
    /// Creates flags from their bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// These are the last bytes of the body: the DATA frame carries END_STREAM unless ``noEndStream`` is set.
    public static let endOfData = DataFlags(rawValue: 0x1)
    /// With ``endOfData``: do not set END_STREAM, because trailers (submitted from the read closure with
    /// ``Session/submitTrailer(streamID:fields:)``) or other HEADERS follow.
    public static let noEndStream = DataFlags(rawValue: 0x2)
    /// The provider writes the payload itself when the frame is sent (zero-copy).
    public static let noCopy = DataFlags(rawValue: 0x4)
}
