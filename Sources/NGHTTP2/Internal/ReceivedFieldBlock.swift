/// The field block a session is receiving, with what enforcing SETTINGS_MAX_HEADER_LIST_SIZE needs. One stored
/// property of the session, so a received field costs one exclusivity check, not one per piece of state.
struct ReceivedFieldBlock {
    /// The fields received so far.
    private(set) var fields: [HeaderField] = []
    /// Their size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2: name + value + 32 per field).
    private var size = 0
    /// The SETTINGS_MAX_HEADER_LIST_SIZE the session advertised; libnghttp2 1.52 does not enforce it, so we do.
    var limit: Int?
    /// Streams whose field block exceeded ``limit``.
    private var oversizedStreams: Set<Int32> = []
    /// Strings of received header fields, reused for repeated HPACK table entries.
    private var strings = FieldStringCache()

    /// A new field block starts.
    mutating func begin() {
        fields.removeAll(keepingCapacity: true)
        size = 0
    }

    /// Adds a received field (the last of ``fields``); returns false once the block is over ``limit`` (the stream
    /// is then marked oversized, see ``takeOversized(_:)``).
    mutating func add(
        streamID: Int32,
        name: UnsafePointer<UInt8>?,
        nameLength: Int,
        value: UnsafePointer<UInt8>?,
        valueLength: Int,
        flags: HeaderField.Flags
    ) -> Bool {
        if let limit {
            size += nameLength + valueLength + 32
            if size > limit {
                oversizedStreams.insert(streamID)
                return false
            }
        }
        fields.append(HeaderField(strings.string(name, count: nameLength), strings.string(value, count: valueLength), flags: flags))
        return true
    }

    /// Whether the block of `streamID` went over the limit; forgets it.
    mutating func takeOversized(_ streamID: Int32) -> Bool {
        guard !oversizedStreams.isEmpty else { return false }
        return oversizedStreams.remove(streamID) != nil
    }
}
