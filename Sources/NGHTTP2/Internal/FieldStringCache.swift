#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns header names and values that libnghttp2 hands out into Strings, reusing the String made last time for
/// the same bytes at the same address: an entry of the HPACK dynamic or static table is handed out from one place for
/// as long as it lives, so a repeated field costs a compare instead of a String (and, past 15 UTF-8 bytes, an
/// allocation).
///
/// The cache is direct-mapped: each address has one slot, found by one multiplication (no hashing, no probing, no
/// growth), and a newcomer simply takes the slot. The bytes are always compared with the cached String's, so a slot
/// whose address now holds other bytes (a table entry evicted and its memory reused) gives a new String.
struct FieldStringCache {
    private static let slotCount = 512
    /// The top bits of the hash give the slot: 64 - log2(slotCount).
    private static let slotShift = UInt(64 - 9)
    /// The address each slot's string was made from (0: empty). Both arrays are made on first use (a connection
    /// that never receives a field block keeps none).
    private var addresses: [UInt] = []
    private var strings: [String] = []

    mutating func string(_ bytes: UnsafePointer<UInt8>?, count: Int) -> String {
        guard let bytes, count > 0 else { return "" }
        if addresses.isEmpty {
            addresses = Array(repeating: 0, count: Self.slotCount)
            strings = Array(repeating: "", count: Self.slotCount)
        }
        let address = UInt(bitPattern: bytes)
        // Fibonacci hashing: one multiply spreads addresses a few bytes apart (":method" and "GET" in the static
        // table) as well as the regularly spaced chunks malloc hands out for dynamic table entries.
        let slot = Int(truncatingIfNeeded: (address &* 0x9E37_79B9_7F4A_7C15) >> Self.slotShift)
        if addresses[slot] == address {
            let cached = strings[slot]
            if cached.utf8.count == count,
                cached.utf8.withContiguousStorageIfAvailable({ memcmp($0.baseAddress!, bytes, count) == 0 }) == true
            {
                return cached
            }
        }
        let string = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
        addresses[slot] = address
        strings[slot] = string
        return string
    }
}
