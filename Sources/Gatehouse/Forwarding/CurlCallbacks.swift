import CCurl

// libcurl calls these C function pointers on the engine's thread. They must not capture
// context (Swift only converts non-capturing closures to C pointers), so each one
// recovers its owner from the userdata pointer libcurl hands back. Every userdata is an
// `Unmanaged.passUnretained` of an object the engine keeps alive for as long as the easy
// or multi handle that carries the pointer exists, which is what makes the conversions
// below sound.

/// CURLOPT_READFUNCTION: request body bytes toward the upstream.
let curlReadCallback: gh_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return Int(GH_CURL_READFUNC_ABORT) }
    let transfer = Unmanaged<UpstreamTransfer>.fromOpaque(userdata).takeUnretainedValue()
    return transfer.curlReadBody(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
}

/// CURLOPT_WRITEFUNCTION: response body bytes from the upstream.
let curlWriteCallback: gh_data_callback = { buffer, size, count, userdata in
    guard let userdata else { return 0 }
    let transfer = Unmanaged<UpstreamTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: buffer, count: size * count)
    return transfer.curlAcceptResponseBytes(bytes) ? size * count : Int(GH_CURL_WRITEFUNC_PAUSE)
}

/// CURLOPT_HEADERFUNCTION: one response header line at a time, status line included.
let curlHeaderCallback: gh_data_callback = { buffer, size, count, userdata in
    guard let userdata else { return 0 }
    let transfer = Unmanaged<UpstreamTransfer>.fromOpaque(userdata).takeUnretainedValue()
    transfer.curlHeaderLine(UnsafeRawBufferPointer(start: buffer, count: size * count))
    return size * count
}

/// CURLMOPT_SOCKETFUNCTION: libcurl tells us which socket events it wants.
let curlSocketCallback: gh_socket_callback = { _, socket, what, userp, _ in
    guard let userp else { return -1 }
    let engine = Unmanaged<CurlEngine>.fromOpaque(userp).takeUnretainedValue()
    engine.curlWatch(socket: socket, what: what)
    return 0
}

/// CURLMOPT_TIMERFUNCTION: libcurl asks to be called back after `timeout` ms (-1 = never).
let curlTimerCallback: gh_timer_callback = { _, timeout, userp in
    guard let userp else { return -1 }
    let engine = Unmanaged<CurlEngine>.fromOpaque(userp).takeUnretainedValue()
    engine.curlSetTimer(milliseconds: timeout)
    return 0
}

/// CURLOPT_OPENSOCKETFUNCTION: every upstream socket libcurl opens passes here, so the
/// engine learns that a descriptor number is new and must be (re-)added to epoll.
let curlOpenSocketCallback: gh_opensocket_callback = { clientp, _, address in
    guard let clientp, let address else { return CURL_SOCKET_BAD }
    let socket = gh_open_socket(address)
    if socket >= 0 {
        Unmanaged<CurlEngine>.fromOpaque(clientp).takeUnretainedValue().curlOpened(socket: socket)
    }
    return socket
}

/// CURLOPT_CLOSESOCKETFUNCTION: the other end of a socket's life; the engine forgets the
/// descriptor before the number can be handed out again.
let curlCloseSocketCallback: gh_closesocket_callback = { clientp, socket in
    if let clientp { Unmanaged<CurlEngine>.fromOpaque(clientp).takeUnretainedValue().curlClosed(socket: socket) }
    return gh_close_socket(socket)
}
