// DELETE AT MERGE (decode branch provides these)
enum ContentDecoding { static let acceptEncoding = "gzip, deflate" }
extension ClientSession.Response { func decodingContent(maxExpansionRatio: Int) -> ClientSession.Response { self } }
