//! A connected stream pair and the raw socket of a std stream, shared by
//! the integration tests (through `mod.rs`) and the library's unit tests
//! (src/ops/io.rs includes this file).

#![allow(dead_code)] // each test binary uses part of it

/// A connected stream pair: AF_UNIX on POSIX, loopback TCP on Windows.
#[cfg(unix)]
pub type Stream = std::os::unix::net::UnixStream;
#[cfg(windows)]
pub type Stream = std::net::TcpStream;

/// A socket as rsock takes it: a descriptor, or a SOCKET.
#[cfg(unix)]
pub type Socket = std::os::unix::io::RawFd;
#[cfg(windows)]
pub type Socket = usize;

#[cfg(unix)]
pub fn pair() -> (Stream, Stream) {
    Stream::pair().expect("socketpair")
}

#[cfg(windows)]
pub fn pair() -> (Stream, Stream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let a = Stream::connect(l.local_addr().expect("address")).expect("connect");
    (a, l.accept().expect("accept").0)
}

/// The socket of a std stream.
pub trait Raw {
    fn raw(&self) -> Socket;
}

#[cfg(unix)]
impl<T: std::os::unix::io::AsRawFd> Raw for T {
    fn raw(&self) -> Socket {
        self.as_raw_fd()
    }
}

#[cfg(windows)]
impl<T: std::os::windows::io::AsRawSocket> Raw for T {
    fn raw(&self) -> Socket {
        self.as_raw_socket() as Socket
    }
}
