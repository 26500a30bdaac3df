import CompressNIO
import NIOCore

/// The `content-encoding` decodings a client offers and undoes.
enum ContentDecoding {
    /// The `accept-encoding` a client sends when it decodes responses.
    static let acceptEncoding = "gzip, deflate"

    /// A decoded body may grow to this many times its compressed size (beyond ``ContentDecoder/expansionFloor``).
    /// Text and JSON compress 3–20×; 100× leaves room for very repetitive bodies and still stops a bomb (64 MiB of
    /// zeros gzip to 64 KiB, 1,000×) after about 1 MiB.
    static let defaultMaxExpansionRatio = 100
}

/// Undoes one `content-encoding` (gzip or deflate) of a body, chunk by chunk, as ``StreamReader`` reads it.
///
/// The reader takes a compressed chunk out of its storage only when the decoder has used up the previous one (so
/// the stream's window is credited as today, and the decoder holds at most ``compressedChunkLimit`` compressed
/// bytes and one output chunk); zlib inflates straight into the buffer the read returns, at most
/// ``outputChunkLimit`` bytes at a time, so even a bomb never allocates more than that per read.
///
/// - gzip (`gzip`, `x-gzip`): RFC 1952; a body of several gzip members (concatenated files) is decoded whole.
/// - deflate: RFC 9110 §8.4.1.2 says the zlib format (RFC 1950); some servers send raw deflate (RFC 1951)
///   instead. The first two bytes decide: a valid zlib header (CM 8, window ≤ 32 KiB, header check) is zlib,
///   gzip's magic (1f 8b, a mislabelled gzip body) gzip, anything else raw deflate.
/// - The end must be a proper end: a body that stops inside the compressed stream (a truncated download) fails with
///   ``HTTP2Error/decompressionFailed(_:)``, as does corrupt data. Bytes after the end of the compressed stream
///   (that are not another gzip member) are ignored, as curl and browsers do. An empty body is an empty body.
/// - Bomb limit: the decoded size may reach `max(expansionFloor, maxExpansionRatio × compressed bytes consumed)`;
///   one more byte and the stream is cancelled and the read throws ``HTTP2Error/decompressionLimit(ratio:)``. The
///   floor lets small bodies have any ratio (a 1 KiB JSON of zeros is fine); beyond it the ratio holds.
///
/// One consumer at a time, like ``StreamReader``: a read that starts while another is in progress throws
/// ``HTTP2Error/readerBusy``. The zlib stream is owned by compress-nio's `ZlibDecompressor` (freed in its deinit);
/// its state lives in a `LockedState` held only around the synchronous inflate steps, never across an `await`.
final class ContentDecoder: Sendable {
    enum Coding: String, Sendable {
        case gzip
        case deflate
    }

    /// Decoded output below this size is never limited by the ratio.
    static let expansionFloor = 1 << 20
    /// Compressed bytes taken from the storage at a time.
    static let compressedChunkLimit = 32 << 10
    /// Decoded bytes produced per read, at most (and at most what the read asked for).
    static let outputChunkLimit = 64 << 10

    let coding: Coding
    let maxExpansionRatio: Int
    private let state: LockedState<State>

    init(coding: Coding, maxExpansionRatio: Int = ContentDecoding.defaultMaxExpansionRatio) {
        self.coding = coding
        self.maxExpansionRatio = max(1, maxExpansionRatio)
        state = LockedState(State(coding: coding))
    }

    /// Reads up to `maxBytes` decoded bytes, taking compressed chunks from `storage` as needed.
    func read(upTo maxBytes: Int, from storage: StreamReader.Storage) async throws -> ByteBuffer? {
        guard maxBytes > 0 else { throw HTTP2Error.invalidArgument("read(upTo: \(maxBytes)) needs a positive count") }
        if let error = state.withLock({ $0.begin() }) { throw error }
        defer { state.withLock { $0.busy = false } }
        var inputEnded = false
        while true {
            let ratio = maxExpansionRatio
            switch state.withLock({ $0.decode(maxBytes: maxBytes, inputEnded: inputEnded, ratio: ratio) }) {
            case .bytes(let bytes):
                return bytes
            case .end:
                return nil
            case .failed(let error):
                storage.cancel()  // nothing more of this body is wanted: stop the peer and free the window
                throw error
            case .needInput:
                // Throws (and leaves the decoder as it was) if the stream was reset, or on cancellation.
                if let chunk = try await storage.read(maxBytes: Self.compressedChunkLimit) {
                    state.withLock { $0.add(chunk) }
                } else {
                    inputEnded = true
                }
            }
        }
    }

    /// Whether the decoded body was read to its proper end.
    var isFinished: Bool { state.withLock { $0.isFinished } }

    /// Compressed and decoded byte counts so far (for tests and diagnostics).
    var totals: (compressed: Int, decoded: Int) { state.withLock { ($0.totalIn, $0.totalOut) } }
}

extension ContentDecoder {
    enum Decoded: Sendable {
        case bytes(ByteBuffer)
        case end
        case needInput
        case failed(HTTP2Error)
    }

    struct State {
        let coding: Coding
        /// Created on the first compressed bytes (for deflate, once the first two bytes tell zlib from raw).
        var inflater: ZlibDecompressor?
        /// Compressed bytes taken from the storage and not yet consumed by zlib.
        var input = ByteBuffer()
        /// Decoded bytes not yet returned (an output buffer can be larger than the read asked for).
        var pending = ByteBuffer()
        /// zlib may have more to give without new input: its last call filled the output, or it used up its input
        /// without saying whether the stream ended there (the next call, with no input, tells).
        var mayHaveMore = false
        /// zlib reported the end of the compressed stream.
        var streamEnded = false
        /// The end of the decoded body was returned.
        var finished = false
        /// Bytes that are not another gzip member followed the end: the rest of the body is ignored.
        var ignoringRest = false
        var failure: HTTP2Error?
        var busy = false
        /// Compressed bytes consumed by zlib, and decoded bytes it produced.
        var totalIn = 0
        var totalOut = 0

        init(coding: Coding) {
            self.coding = coding
        }

        mutating func begin() -> HTTP2Error? {
            if busy { return HTTP2Error.readerBusy }
            if let failure { return failure }
            busy = true
            return nil
        }

        mutating func add(_ chunk: ByteBuffer) {
            if input.readableBytes == 0 {
                input = chunk
            } else {
                var chunk = chunk
                input.writeBuffer(&chunk)  // only while deflate's first two bytes are incomplete
            }
        }

        /// Nothing decoded is left to return and the compressed stream ended properly (the storage says whether the
        /// body itself ended).
        var isFinished: Bool { finished || (streamEnded && pending.readableBytes == 0 && failure == nil) }

        mutating func decode(maxBytes: Int, inputEnded: Bool, ratio: Int) -> Decoded {
            if let failure { return .failed(failure) }
            while true {
                if pending.readableBytes > 0 {
                    return .bytes(pending.readSlice(length: min(maxBytes, pending.readableBytes))!)
                }
                if finished { return .end }
                if streamEnded {
                    if input.readableBytes > 0 {
                        // Another gzip member follows: decode it too. Anything else after the end is ignored.
                        if coding == .gzip, !ignoringRest, input.readableBytes >= 2 || !inputEnded {
                            guard input.readableBytes >= 2 else { return .needInput }
                            if input.getInteger(at: input.readerIndex, as: UInt16.self) == 0x1f8b {
                                do { try inflater?.reset() } catch { return fail(.decompressionFailed("gzip: \(error)")) }
                                streamEnded = false
                                continue
                            }
                        }
                        ignoringRest = true
                        input.moveReaderIndex(to: input.writerIndex)
                    }
                    // Read the body to its end (trailers, END_STREAM) before saying it ended.
                    guard inputEnded else { return .needInput }
                    finished = true
                    return .end
                }
                if input.readableBytes == 0 && !mayHaveMore {
                    if !inputEnded { return .needInput }
                    if inflater == nil {  // no compressed byte at all: an empty body
                        finished = true
                        return .end
                    }
                    return fail(.decompressionFailed("\(coding.rawValue): the body ended inside the compressed stream (truncated)"))
                }
                if inflater == nil {
                    if let failed = makeInflater(inputEnded: inputEnded) { return failed }
                    if inflater == nil { return .needInput }
                }
                let wanted = min(maxBytes, ContentDecoder.outputChunkLimit)
                var output = ByteBufferAllocator().buffer(capacity: wanted)
                // The allocator rounds capacities up to a power of two, and zlib fills every writable byte: start
                // the output past the surplus, so it gets exactly `wanted` (no copy, no leftover to keep).
                let surplus = output.writableBytes - wanted
                if surplus > 0 {
                    output.moveWriterIndex(forwardBy: surplus)
                    output.moveReaderIndex(forwardBy: surplus)
                }
                let before = input.readableBytes
                do {
                    try inflater!.inflate(from: &input, to: &output)
                    // No error: zlib returned Z_STREAM_END, or Z_OK having used up all its input. Z_OK with no
                    // progress at all is reported as Z_BUF_ERROR (inputBufferOverflow), so no progress means the end.
                    let progressed = before != input.readableBytes || output.readableBytes > 0
                    if input.readableBytes > 0 || !progressed {
                        streamEnded = true
                        mayHaveMore = false
                    } else {
                        mayHaveMore = true  // ended exactly here, or wants more input: the next call says which
                    }
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    mayHaveMore = true  // the output is full; more may come from the same input
                } catch let error as CompressNIOError where error == .inputBufferOverflow {
                    mayHaveMore = false  // zlib needs more input
                } catch let error as CompressNIOError where error == .corruptData {
                    return fail(.decompressionFailed("\(coding.rawValue): corrupt data"))
                } catch {
                    return fail(.decompressionFailed("\(coding.rawValue): \(error)"))
                }
                totalIn += before - input.readableBytes
                totalOut += output.readableBytes
                let (allowed, overflow) = ratio.multipliedReportingOverflow(by: totalIn)
                if totalOut > ContentDecoder.expansionFloor, !overflow, totalOut > allowed {
                    return fail(.decompressionLimit(ratio: ratio))
                }
                pending = output
            }
        }

        private mutating func makeInflater(inputEnded: Bool) -> Decoded? {
            let algorithm: ZlibAlgorithm
            switch coding {
            case .gzip:
                algorithm = .gzip
            case .deflate:
                guard input.readableBytes >= 2 else {
                    if !inputEnded { return nil }
                    algorithm = .deflate  // one byte: let raw deflate say what it makes of it
                    break
                }
                let cmf = input.getInteger(at: input.readerIndex, as: UInt8.self)!
                let flg = input.getInteger(at: input.readerIndex + 1, as: UInt8.self)!
                let isZlib = cmf & 0x0f == 8 && cmf >> 4 <= 7 && (UInt16(cmf) << 8 | UInt16(flg)) % 31 == 0
                let isGzip = cmf == 0x1f && flg == 0x8b  // mislabelled gzip: the magic cannot start raw deflate
                algorithm = isZlib ? .zlib : isGzip ? .gzip : .deflate
            }
            do {
                inflater = try ZlibDecompressor(algorithm: algorithm)
                return nil
            } catch {
                return fail(.decompressionFailed("\(coding.rawValue): \(error)"))
            }
        }

        private mutating func fail(_ error: HTTP2Error) -> Decoded {
            failure = error
            inflater = nil
            input = ByteBuffer()
            pending = ByteBuffer()
            return .failed(error)
        }
    }
}
