/// A connection's open streams by ID: a Dictionary, with the stream looked up or added last kept beside it.
///
/// The frames of one stream mostly come together (a request's HEADERS, its handler's answer, its close), and each
/// step looks its stream up: the one kept aside answers with a compare, where the Dictionary hashes the ID (SipHash,
/// about 2% of a hello-world server's CPU time). A class, so that a lookup may update what it keeps aside; one per
/// connection, used on its event loop.
final class StreamTable {
    private var byID: [Int32: StreamContext] = [:]
    /// The stream used last, if it is still in the table.
    private var last: StreamContext?

    var count: Int { byID.count }
    var isEmpty: Bool { byID.isEmpty }

    subscript(id: Int32) -> StreamContext? {
        get {
            if let last, last.id == id { return last }
            let stream = byID[id]
            if stream != nil { last = stream }
            return stream
        }
        set {
            byID[id] = newValue
            last = newValue
        }
    }

    @discardableResult
    func removeValue(forKey id: Int32) -> StreamContext? {
        if last?.id == id { last = nil }
        return byID.removeValue(forKey: id)
    }

    /// Empties the table; returns what it held.
    func takeAll() -> [Int32: StreamContext] {
        let all = byID
        byID = [:]
        last = nil
        return all
    }
}
