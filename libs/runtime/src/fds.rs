//! Handing listening sockets to another process: SCM_RIGHTS over a
//! SEQPACKET Unix socket, one message per socket with its state beside it.
//! SEQPACKET keeps message boundaries, so each message's bytes and
//! descriptor arrive together, and a message too large for the buffer is
//! reported (MSG_TRUNC), not silently split. The calls block: they run on
//! tokio's blocking pool, bounded by socket timeouts.

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
    SocketAddrUnix, SocketFlags, SocketType, sockopt,
};
use std::{
    io::{self, IoSlice, IoSliceMut},
    mem::MaybeUninit,
    os::{
        fd::{AsFd, OwnedFd},
        unix::fs::PermissionsExt,
    },
    path::Path,
    time::Duration,
};

/// The largest message (the default socket buffer holds 208 KiB): one
/// proxy's state, its routes and a latency histogram per routed revision,
/// is a few kilobytes.
const MAX_MESSAGE: usize = 128 << 10;

/// How long either side waits for the other.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One end of a hand-over.
pub struct Channel(OwnedFd);

/// Listens on `path` (a new file, 0600) for the one process that hands over.
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let _ = std::fs::remove_file(path);
    let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?;
    rustix::net::bind(&fd, &SocketAddrUnix::new(path)?)?;
    let ready = || -> io::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        rustix::net::listen(&fd, 1)?;
        // Applies to accept too: a sender that never comes is an error.
        Ok(sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(TIMEOUT))?)
    };
    ready().inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })?;
    Ok(fd)
}

/// Accepts the sender: a process of this user only.
pub fn accept(listener: &OwnedFd) -> io::Result<Channel> {
    let fd = rustix::net::accept_with(listener, SocketFlags::CLOEXEC)?;
    let peer = sockopt::socket_peercred(&fd)?;
    if peer.uid != rustix::process::getuid() {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("a process of uid {} tried to hand over", peer.uid.as_raw())));
    }
    Channel::timed(fd)
}

/// Connects to the receiver listening on `path`.
pub fn connect(path: &Path) -> io::Result<Channel> {
    let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(path)?)?;
    Channel::timed(fd)
}

impl Channel {
    fn timed(fd: OwnedFd) -> io::Result<Self> {
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(TIMEOUT))?;
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(TIMEOUT))?;
        Ok(Self(fd))
    }

    /// Sends one message, with a descriptor if given.
    pub fn send(&self, bytes: &[u8], fd: Option<&OwnedFd>) -> io::Result<()> {
        if bytes.is_empty() || bytes.len() > MAX_MESSAGE {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("a message of {} bytes", bytes.len())));
        }
        let fds = fd.map(|fd| [fd.as_fd()]);
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if let Some(fds) = &fds {
            control.push(SendAncillaryMessage::ScmRights(fds));
        }
        let sent = rustix::net::sendmsg(&self.0, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL)?;
        if sent != bytes.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, format!("sent {sent} of {} bytes", bytes.len())));
        }
        Ok(())
    }

    /// Receives one message and the descriptor that came with it, if any;
    /// `None` when the sender closed its end.
    pub fn receive(&self) -> io::Result<Option<(Vec<u8>, Option<OwnedFd>)>> {
        let mut bytes = vec![0u8; MAX_MESSAGE];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = rustix::net::recvmsg(&self.0, &mut [IoSliceMut::new(&mut bytes)], &mut control, RecvFlags::CMSG_CLOEXEC)?;
        let mut fds: Vec<OwnedFd> = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        use rustix::net::ReturnFlags;
        if received.flags.intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a hand-over message was cut short"));
        }
        if received.bytes == 0 {
            return Ok(None);
        }
        if fds.len() > 1 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{} descriptors in one message", fds.len())));
        }
        bytes.truncate(received.bytes);
        Ok(Some((bytes, fds.pop())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_and_its_state_cross_between_processes_ends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("handover.sock");
        let listener = listen(&path).expect("listen");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let sender = std::thread::spawn(move || {
            let channel = connect(&path).expect("connect");
            channel.send(b"first", Some(&OwnedFd::from(tcp))).expect("send with a descriptor");
            channel.send(b"done", None).expect("send");
            // Waits for the receiver's answer.
            channel.receive().expect("answer")
        });
        let channel = accept(&listener).expect("accept");
        let (bytes, fd) = channel.receive().expect("receive").expect("a message");
        assert_eq!(bytes, b"first");
        let received = std::net::TcpListener::from(fd.expect("the descriptor"));
        assert_eq!(received.local_addr().expect("addr"), addr, "the same listening socket");
        let (bytes, fd) = channel.receive().expect("receive").expect("a message");
        assert_eq!((bytes.as_slice(), fd.is_none()), (&b"done"[..], true));
        channel.send(b"ok", None).expect("answer");
        let answer = sender.join().expect("sender");
        assert_eq!(answer.map(|(b, _)| b), Some(b"ok".to_vec()));
        // A connection to the address reaches the received socket.
        let _client = std::net::TcpStream::connect(addr).expect("connect");
        received.accept().expect("accepted through the handed socket");
        assert!(channel.receive().expect("closed").is_none(), "the sender's end closed");
    }
}
