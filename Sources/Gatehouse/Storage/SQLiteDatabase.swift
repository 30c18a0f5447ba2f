import CSQLite

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed SQLite call: what we were doing, SQLite's (extended) result code and the
/// connection's own message, so an operator reads "database is locked", not a number.
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var code: Int32
    public var message: String

    public init(operation: String, code: Int32, message: String) {
        self.operation = operation
        self.code = code
        self.message = message
    }

    public var description: String { "\(operation): \(message) (SQLite code \(code))" }
}

/// A value bound to a statement parameter.
public enum SQLiteValue: Sendable, Equatable {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case null
}

/// One connection to an SQLite file, over the system library's C API.
///
/// Why hand-written: the key store runs about a dozen statements. The system SQLite
/// through its C API is the thinnest possible layer (no extra package, no code
/// generation); GRDB or sqlite-nio would each be a large dependency for that.
///
/// Threading rule: a connection is not `Sendable`. It belongs to one owner (the CLI
/// command, the store watcher's thread, a test) and is used by one thread at a time; the
/// compiler enforces that through the missing conformance. Each process / component that
/// needs the file opens its own connection; SQLite's file locking (WAL mode) makes
/// connections in different threads or processes safe with each other. Because the owner
/// serializes its calls, the connection is opened with `SQLITE_OPEN_NOMUTEX`.
public final class SQLiteDatabase {
    /// The file this connection opened.
    public let path: String
    /// `sqlite3 *`. Valid from a successful `sqlite3_open_v2` until `deinit`.
    fileprivate let handle: OpaquePointer

    /// Opens `path`, creating the file (with `fileMode`) when it does not exist, and
    /// switches it to WAL mode: readers never block the writer, so a running gateway and
    /// the CLI can use the file at the same time. Lock waits give up after `busyTimeout`.
    public init(path: String, fileMode: mode_t = 0o600, busyTimeout: Duration = .seconds(5)) throws {
        self.path = path
        try Self.createFileIfMissing(path, mode: fileMode)
        var opened: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &opened, flags, nil)
        guard let opened else {
            throw SQLiteError(operation: "open \(path)", code: code, message: "out of memory")
        }
        guard code == SQLITE_OK else {
            let message = String(cString: sqlite3_errmsg(opened))
            // SQLite hands back a handle even when opening fails; it must still be closed.
            sqlite3_close_v2(opened)
            throw SQLiteError(operation: "open \(path)", code: code, message: message)
        }
        handle = opened
        sqlite3_extended_result_codes(handle, 1)
        let (seconds, attoseconds) = busyTimeout.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        sqlite3_busy_timeout(handle, Int32(clamping: milliseconds))
        try execute("PRAGMA journal_mode = WAL")
    }

    deinit {
        // `close_v2` rather than `close`: it never fails because of a statement that is
        // still alive (each `SQLiteStatement` keeps this object alive anyway).
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements without parameters (schema, pragmas).
    public func execute(_ sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        // `sqlite3_exec` allocates the message with sqlite3_malloc; we own it.
        defer { sqlite3_free(errorMessage) }
        let code = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        guard code == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? lastMessage
            throw SQLiteError(operation: Self.summary(of: sql), code: code, message: message)
        }
    }

    public func prepare(_ sql: String) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard code == SQLITE_OK, let statement else {
            sqlite3_finalize(statement)
            throw SQLiteError(operation: "prepare \(Self.summary(of: sql))", code: code, message: lastMessage)
        }
        return SQLiteStatement(database: self, handle: statement, sql: sql)
    }

    /// Runs one statement to completion and returns the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int {
        let statement = try prepare(sql)
        try statement.bind(values)
        while try statement.step() {}
        return Int(sqlite3_changes(handle))
    }

    /// Runs one query and maps each row.
    public func query<Row>(
        _ sql: String, _ values: [SQLiteValue] = [], row: (SQLiteStatement) throws -> Row
    ) throws -> [Row] {
        let statement = try prepare(sql)
        try statement.bind(values)
        var rows: [Row] = []
        while try statement.step() { rows.append(try row(statement)) }
        return rows
    }

    public enum TransactionKind: String, Sendable {
        /// Takes the write lock at once: a read-then-write transaction cannot fail half way
        /// with SQLITE_BUSY because another connection wrote in between.
        case immediate = "IMMEDIATE"
        /// Read-only use: a consistent view of the file across several statements.
        case deferred = "DEFERRED"
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    /// Not re-entrant (SQLite has no nested BEGIN).
    public func transaction<T>(_ kind: TransactionKind = .immediate, _ body: () throws -> T) throws -> T {
        try execute("BEGIN \(kind.rawValue)")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            // The original error is the one worth reporting; a failed rollback leaves the
            // transaction to be rolled back when the connection closes.
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// `PRAGMA data_version`: changes whenever *another* connection (this process or
    /// another one) commits to the file; this connection's own writes leave it alone.
    public func dataVersion() throws -> Int64 {
        let statement = try prepare("PRAGMA data_version")
        guard try statement.step() else {
            throw SQLiteError(operation: "PRAGMA data_version", code: SQLITE_ERROR, message: "returned no row")
        }
        return statement.int64(0)
    }

    /// The message of the connection's last failed call.
    fileprivate var lastMessage: String { String(cString: sqlite3_errmsg(handle)) }

    /// The statement's first line, for error messages (never its bound values).
    private static func summary(of sql: String) -> String {
        let firstLine = sql.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? sql
        return firstLine.trimmingSpaces
    }

    /// SQLite would create the file with the process umask (usually 0644); creating it
    /// first fixes its mode, and SQLite gives the `-wal` and `-shm` files the same mode.
    /// An existing file keeps the mode its operator chose.
    private static func createFileIfMissing(_ path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd >= 0 {
            // open(2) applies the umask; fchmod sets exactly `mode`.
            _ = fchmod(fd, mode)
            close(fd)
            return
        }
        let error = errno
        guard error == EEXIST else {
            throw SQLiteError(
                operation: "create \(path)", code: SQLITE_CANTOPEN, message: String(cString: strerror(error)))
        }
    }
}

/// A prepared statement. Owned by whoever prepared it, under the connection's threading
/// rule; finalized when released.
public final class SQLiteStatement {
    /// Keeps the connection open for as long as the statement lives.
    private let database: SQLiteDatabase
    /// `sqlite3_stmt *`, valid until `deinit`.
    private let handle: OpaquePointer
    private let sql: String

    fileprivate init(database: SQLiteDatabase, handle: OpaquePointer, sql: String) {
        self.database = database
        self.handle = handle
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(handle)
    }

    /// Binds `values` to parameters 1…n, after clearing any earlier bindings.
    public func bind(_ values: [SQLiteValue]) throws {
        sqlite3_clear_bindings(handle)
        for (offset, value) in values.enumerated() {
            try bind(value, at: Int32(offset + 1))
        }
    }

    /// Binds one parameter (1-based, as in SQLite).
    public func bind(_ value: SQLiteValue, at index: Int32) throws {
        let code: Int32
        switch value {
        case .integer(let number):
            code = sqlite3_bind_int64(handle, index, number)
        case .null:
            code = sqlite3_bind_null(handle, index)
        case .text(let text):
            let length = text.utf8.count
            guard let length32 = Int32(exactly: length) else { throw tooBig(index) }
            // `withCString` lends a pointer that is valid only inside the closure; the
            // transient binding makes SQLite copy the bytes before it returns. The
            // explicit length keeps any embedded NUL.
            code = text.withCString { gh_sqlite3_bind_text_transient(handle, index, $0, length32) }
        case .blob(let bytes):
            guard let length32 = Int32(exactly: bytes.count) else { throw tooBig(index) }
            if bytes.isEmpty {
                // An empty array may have no base address, which SQLite would read as NULL.
                code = sqlite3_bind_zeroblob(handle, index, 0)
            } else {
                // As for text: the buffer lives for the closure and SQLite copies it.
                code = bytes.withUnsafeBytes { gh_sqlite3_bind_blob_transient(handle, index, $0.baseAddress, length32) }
            }
        }
        guard code == SQLITE_OK else {
            throw SQLiteError(operation: "bind parameter \(index)", code: code, message: database.lastMessage)
        }
    }

    /// Advances: `true` when a row is available, `false` when the statement is done.
    public func step() throws -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW:
            return true
        case SQLITE_DONE:
            return false
        default:
            let message = database.lastMessage
            sqlite3_reset(handle)
            throw SQLiteError(operation: sql.trimmingSpaces, code: code, message: message)
        }
    }

    /// Makes the statement runnable again (bindings are kept).
    public func reset() {
        sqlite3_reset(handle)
    }

    // Column reads are 0-based, as in SQLite. They copy the value out at once: the
    // pointers SQLite returns are valid only until the next step, reset or finalize.

    public func isNull(_ column: Int32) -> Bool {
        sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    public func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    public func optionalInt64(_ column: Int32) -> Int64? {
        isNull(column) ? nil : int64(column)
    }

    public func text(_ column: Int32) -> String {
        // SQLite's documented order: fetch the pointer first, then its length.
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    public func optionalText(_ column: Int32) -> String? {
        isNull(column) ? nil : text(column)
    }

    public func blob(_ column: Int32) -> [UInt8] {
        guard let pointer = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private func tooBig(_ index: Int32) -> SQLiteError {
        SQLiteError(operation: "bind parameter \(index)", code: SQLITE_TOOBIG, message: "value too large")
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        let scalars = unicodeScalars.drop { $0 == " " || $0 == "\t" }
        var trimmed = String(String.UnicodeScalarView(scalars))
        while trimmed.last == " " || trimmed.last == "\t" { trimmed.removeLast() }
        return trimmed
    }
}
