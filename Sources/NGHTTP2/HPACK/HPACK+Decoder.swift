internal import CNGHTTP2

extension HPACK {
    /// An HPACK decoder: decompresses header blocks into header lists
    /// ([RFC 7541 §3](https://www.rfc-editor.org/rfc/rfc7541.html#section-3)), keeping the dynamic table
    /// that the peer's encoder mirrors. Wraps an `nghttp2_hd_inflater`.
    ///
    /// Decode every header block of one connection, in the order received. Field names and values are
    /// returned as received; bytes that are not valid UTF-8 become U+FFFD. Fields sent as "never indexed"
    /// ([§6.2.3](https://www.rfc-editor.org/rfc/rfc7541.html#section-6.2.3)) come back flagged
    /// ``HeaderField/Flags/noIndex``. Forward them with that flag too.
    ///
    /// A decoding error is a connection error of type COMPRESSION_ERROR
    /// ([RFC 9113 §4.3](https://www.rfc-editor.org/rfc/rfc9113.html#section-4.3)). After a decode throws,
    /// the decoder's state no longer matches the peer's encoder and the decoder is unusable: every later
    /// decode throws ``NGHTTP2Error/headerCompression``. Close the connection.
    ///
    /// A decoder is not thread-safe.
    public final class Decoder {
        private let inflater: OpaquePointer
        /// Strings of the dynamic table's entries, reused while the entries live.
        private var strings = FieldStringCache()
        /// How many fields the last block had, to size the next result at once.
        private var lastFieldCount = 8

        /// Creates a decoder with the protocol's initial dynamic table size, 4,096 bytes.
        ///
        /// - Throws: ``NGHTTP2Error/noMemory`` if the decoder cannot be allocated.
        public init() throws(NGHTTP2Error) {
            var pointer: OpaquePointer?
            try NGHTTP2Error.check(nghttp2_hd_inflate_new(&pointer))
            guard let pointer else { throw .noMemory }
            inflater = pointer
        }

        deinit {
            nghttp2_hd_inflate_del(inflater)
        }

        /// Decodes one complete header block.
        ///
        /// - Parameter block: The whole header block (the fragments of a HEADERS or PUSH_PROMISE frame and
        ///   its CONTINUATION frames, put together).
        /// - Returns: The header fields, in order.
        /// - Throws: ``NGHTTP2Error/headerCompression`` if the block is malformed or truncated, refers to an
        ///   index that does not exist, or breaks the dynamic table size rules
        ///   ([RFC 7541 §4.2](https://www.rfc-editor.org/rfc/rfc7541.html#section-4.2)).
        ///   ``NGHTTP2Error/bufferError`` if a name or value is longer than libnghttp2 accepts (64 KiB).
        ///   ``NGHTTP2Error/noMemory``. After any error, the decoder is unusable.
        public func decode(_ block: [UInt8]) throws(NGHTTP2Error) -> [HeaderField] {
            try block.withUnsafeBytes { bytes in decodeResult(bytes) }.get()
        }

        /// Decodes one complete header block from raw memory.
        ///
        /// Same as ``decode(_:)-([UInt8])``, reading the block in place.
        ///
        /// - Parameter block: The whole header block.
        /// - Returns: The header fields, in order.
        /// - Throws: ``NGHTTP2Error/headerCompression`` if the block is malformed or truncated, refers to an
        ///   index that does not exist, or breaks the dynamic table size rules;
        ///   ``NGHTTP2Error/bufferError`` if a name or value is too long; ``NGHTTP2Error/noMemory``.
        ///   After any error, the decoder is unusable.
        public func decode(_ block: UnsafeRawBufferPointer) throws(NGHTTP2Error) -> [HeaderField] {
            try decodeResult(block).get()
        }

        private func decodeResult(_ block: UnsafeRawBufferPointer) -> Result<[HeaderField], NGHTTP2Error> {
            guard let base = block.baseAddress else {
                // An empty block. Give libnghttp2 a real (empty) range, not a null pointer.
                var byte: UInt8 = 0
                return withUnsafePointer(to: &byte) { inflate($0, count: 0) }
            }
            return block.withMemoryRebound(to: UInt8.self) { bytes in
                inflate(bytes.baseAddress ?? base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
            }
        }

        /// Runs `nghttp2_hd_inflate_hd2` over a whole block (`in_final` set) until it reports the end.
        private func inflate(_ input: UnsafePointer<UInt8>, count: Int) -> Result<[HeaderField], NGHTTP2Error> {
            let emit = Int32(NGHTTP2_HD_INFLATE_EMIT.rawValue)
            let final = Int32(NGHTTP2_HD_INFLATE_FINAL.rawValue)
            let noIndex = UInt8(NGHTTP2_NV_FLAG_NO_INDEX.rawValue)
            var fields: [HeaderField] = []
            fields.reserveCapacity(lastFieldCount)
            var offset = 0
            while true {
                var nv = nghttp2_nv()
                var flags: Int32 = 0
                let consumed = nghttp2_hd_inflate_hd2(inflater, &nv, &flags, input + offset, count - offset, 1)
                if consumed < 0 {
                    return .failure(NGHTTP2Error(code: Int32(clamping: consumed)))
                }
                offset += consumed
                if flags & emit != 0 {
                    // The name and value point into the inflater (or the input): copy them now.
                    fields.append(
                        HeaderField(
                            strings.string(nv.name, count: nv.namelen),
                            strings.string(nv.value, count: nv.valuelen),
                            flags: nv.flags & noIndex != 0 ? .noIndex : []
                        )
                    )
                }
                if flags & final != 0 {
                    nghttp2_hd_inflate_end_headers(inflater)
                    lastFieldCount = fields.count
                    return .success(fields)
                }
                if flags & emit == 0 && consumed == 0 {
                    // No field, no progress and no end: cannot happen with in_final set. Never spin.
                    return .failure(.headerCompression)
                }
            }
        }

        /// Applies the SETTINGS_HEADER_TABLE_SIZE that we advertise: the most bytes this decoder keeps in
        /// its dynamic table.
        ///
        /// Call it when the peer acknowledges the SETTINGS frame that carries the value, between header
        /// blocks. If `size` is smaller than ``maxDynamicTableSize``, the table shrinks now, and the next
        /// header block must start with a dynamic table size update no larger than `size`
        /// ([RFC 7541 §4.2](https://www.rfc-editor.org/rfc/rfc7541.html#section-4.2)). If it doesn't,
        /// decoding it throws ``NGHTTP2Error/headerCompression``. A larger `size` only allows the peer's
        /// encoder to send an update up to it.
        ///
        /// - Parameter size: The SETTINGS_HEADER_TABLE_SIZE we advertise, in bytes.
        /// - Throws: ``NGHTTP2Error/invalidArgument`` if `size` is negative; ``NGHTTP2Error/noMemory``.
        public func setMaxDynamicTableSize(_ size: Int) throws(NGHTTP2Error) {
            let size = try HPACK.size(size)
            try NGHTTP2Error.check(nghttp2_hd_inflate_change_table_size(inflater, size))
        }

        /// The bytes the dynamic table holds now, counting 32 bytes of overhead per entry
        /// ([RFC 7541 §4.1](https://www.rfc-editor.org/rfc/rfc7541.html#section-4.1)).
        public var dynamicTableSize: Int {
            nghttp2_hd_inflate_get_dynamic_table_size(inflater)
        }

        /// The maximum size of the dynamic table now in effect
        /// ([RFC 7541 §4.2](https://www.rfc-editor.org/rfc/rfc7541.html#section-4.2)).
        ///
        /// It starts at 4,096. It drops as soon as ``setMaxDynamicTableSize(_:)`` lowers the limit, and
        /// otherwise follows the dynamic table size updates the peer's encoder sends.
        public var maxDynamicTableSize: Int {
            nghttp2_hd_inflate_get_max_dynamic_table_size(inflater)
        }

        /// The number of entries in the dynamic table.
        public var dynamicTableCount: Int {
            nghttp2_hd_inflate_get_num_table_entries(inflater) - HPACK.staticTableCount
        }

        /// Returns an entry of the dynamic table, newest first.
        ///
        /// Entry 0 is the most recently added one, HPACK index 62
        /// ([RFC 7541 §2.3.3](https://www.rfc-editor.org/rfc/rfc7541.html#section-2.3.3)).
        ///
        /// - Parameter index: The position in the dynamic table, from 0 (newest) to
        ///   ``dynamicTableCount`` - 1 (oldest).
        /// - Returns: The entry, or `nil` if `index` is out of range.
        public func dynamicTableEntry(at index: Int) -> HeaderField? {
            guard index >= 0, index < dynamicTableCount else { return nil }
            return HPACK.field(nghttp2_hd_inflate_get_table_entry(inflater, HPACK.staticTableCount + 1 + index))
        }
    }
}

@available(*, unavailable, message: "an HPACK decoder holds mutable C state; use it from one task at a time")
extension HPACK.Decoder: Sendable {}
