//! The monitor process: a single-threaded poll(2) loop over a signal
//! self-pipe, the listening socket, client connections, container output,
//! exec_sync pipes and attach sessions' stdin. Children are reaped on every turn of the loop, so each
//! container exit is recorded on disk before its event goes out.
//!
//! SIGTERM and SIGINT are logged and ignored: the monitor outlives berthd and
//! only a `shutdown` request (or SIGKILL) ends it.

mod attach;
mod conn;
mod container;
mod daemon;
mod exec_spec;
mod exec_stream;
mod exec_sync;
mod handlers;
mod pause;
mod sessions;
mod signals;
mod sys;

use std::{
    os::{fd::AsRawFd, unix::net::UnixListener},
    time::Instant,
};

use berth_runtime::StateRoot;

use self::{
    attach::AttachPoll, conn::Conn, container::Container, exec_stream::StreamExec,
    exec_sync::ExecJob, pause::Pause, signals::SignalPipe,
};
use crate::monitor::{
    cri_log::Stream,
    error::{MonitorError, Result},
    protocol::{Event, Response},
    records::{self, PodRecord},
};

pub use daemon::{main, Config};

/// Size of the one read buffer all pipes and sockets share.
const READ_BUF: usize = 64 * 1024;

/// What a polled fd belongs to.
#[derive(Debug, Clone, Copy)]
enum Tag {
    Signals,
    Listener,
    Conn(u64),
    Output(u64, Stream),
    Exec(u64, Stream),
    Attach(u64, AttachPoll),
}

/// The monitor's whole state.
pub struct Monitor {
    cfg: Config,
    root: StateRoot,
    signals: SignalPipe,
    listener: UnixListener,
    conns: Vec<Conn>,
    pause: Option<Pause>,
    containers: Vec<Container>,
    execs: Vec<(u64, ExecJob)>,
    stream_execs: Vec<StreamExec>,
    next_key: u64,
    buf: Box<[u8]>,
    pollfds: Vec<libc::pollfd>,
    tags: Vec<Tag>,
    exit_requested: bool,
}

impl Monitor {
    fn new(cfg: Config, listener: UnixListener) -> Result<Self> {
        let m = Self {
            root: StateRoot::new(&cfg.runtime_root),
            signals: SignalPipe::install()?,
            cfg,
            listener,
            conns: Vec::new(),
            pause: None,
            containers: Vec::new(),
            execs: Vec::new(),
            stream_execs: Vec::new(),
            next_key: 1,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            pollfds: Vec::new(),
            tags: Vec::new(),
            exit_requested: false,
        };
        m.save_pod_record();
        Ok(m)
    }

    /// Runs until a `shutdown` request has been served.
    pub fn run(&mut self) -> Result<()> {
        while !self.exit_requested {
            berth_runtime::pages::release_if_pending();
            self.build_poll_set();
            let timeout = self.poll_timeout_ms();
            // SAFETY: poll on a vector of pollfds we own, of its length.
            let n = unsafe {
                libc::poll(
                    self.pollfds.as_mut_ptr(),
                    self.pollfds.len() as libc::nfds_t,
                    timeout,
                )
            };
            if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return Err(MonitorError::last_os("poll"));
            }
            if n > 0 {
                self.dispatch_ready();
            }
            self.reap_children();
            self.after_turn();
        }
        Ok(())
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    fn build_poll_set(&mut self) {
        self.pollfds.clear();
        self.tags.clear();
        let mut add = |fd: i32, events: i16, tag: Tag| {
            self.pollfds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            self.tags.push(tag);
        };
        add(self.signals.fd(), libc::POLLIN, Tag::Signals);
        add(self.listener.as_raw_fd(), libc::POLLIN, Tag::Listener);
        for c in &self.conns {
            let events = if c.wants_write() {
                libc::POLLIN | libc::POLLOUT
            } else {
                libc::POLLIN
            };
            add(c.fd(), events, Tag::Conn(c.id));
        }
        for c in &self.containers {
            for (stream, fd) in c.pollable() {
                add(fd, libc::POLLIN, Tag::Output(c.key, stream));
            }
            for (what, fd, events) in c.attach.pollable() {
                add(fd, events, Tag::Attach(c.key, what));
            }
        }
        for (key, job) in &self.execs {
            for (stream, fd) in job.pollable() {
                add(fd, libc::POLLIN, Tag::Exec(*key, stream));
            }
        }
    }

    /// Until the next exec deadline or log retry; -1 when there is none.
    fn poll_timeout_ms(&self) -> i32 {
        let next = self
            .execs
            .iter()
            .filter_map(|(_, j)| j.deadline)
            .chain(self.containers.iter().filter_map(|c| c.log_retry_at()))
            .min();
        match next {
            None => -1,
            Some(t) => {
                let ms = t.saturating_duration_since(Instant::now()).as_millis();
                ms.min(60_000) as i32 + 1
            }
        }
    }

    fn dispatch_ready(&mut self) {
        for i in 0..self.pollfds.len() {
            if self.pollfds[i].revents == 0 {
                continue;
            }
            match self.tags[i] {
                Tag::Signals => {
                    if self.signals.drain() {
                        eprintln!("berth-monitor: SIGTERM/SIGINT ignored; send a shutdown request");
                    }
                }
                Tag::Listener => self.accept(),
                Tag::Conn(id) => self.serve_conn(id),
                Tag::Output(key, stream) => {
                    if let Some(c) = self.containers.iter_mut().find(|c| c.key == key) {
                        c.pump(stream, &mut self.buf, false);
                    }
                }
                Tag::Attach(key, what) => {
                    if let Some(c) = self.containers.iter_mut().find(|c| c.key == key) {
                        match what {
                            AttachPoll::ClientStdin(conn) => {
                                c.attach.read_client_stdin(conn, &mut self.buf)
                            }
                            AttachPoll::Stdin => c.attach.write_stdin(),
                        }
                    }
                }
                Tag::Exec(key, stream) => {
                    if let Some((_, j)) = self.execs.iter_mut().find(|(k, _)| *k == key) {
                        j.pump(stream, &mut self.buf);
                    }
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let id = self.key();
                    match Conn::new(id, stream) {
                        Ok(c) => self.conns.push(c),
                        Err(e) => eprintln!("berth-monitor: accept: {e}"),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("berth-monitor: accept: {e}");
                    return;
                }
            }
        }
    }

    fn serve_conn(&mut self, id: u64) {
        let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) else {
            return;
        };
        conn.flush();
        conn.read_available(&mut self.buf);
        if conn.session {
            // A session's connection only tells, by closing, that it ended.
            conn.rbuf.clear();
            return;
        }
        let mut rbuf = std::mem::take(&mut conn.rbuf);
        let mut start = 0;
        while let Some(nl) = rbuf[start..].iter().position(|&b| b == b'\n') {
            let line = &rbuf[start..start + nl];
            start += nl + 1;
            if !line.iter().all(u8::is_ascii_whitespace) {
                self.handle_line(id, line);
            }
            if self.exit_requested {
                return;
            }
        }
        rbuf.drain(..start);
        if let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) {
            conn.rbuf = rbuf;
        }
    }

    /// Reaps every exited child: containers, exec processes, the pause
    /// process, and orphans reparented to us.
    fn reap_children(&mut self) {
        while let Some((pid, status)) = sys::reap_any() {
            self.child_exited(pid, status);
        }
    }

    fn child_exited(&mut self, pid: i32, status: i32) {
        if self.stream_exec_exited(pid, status) {
            return;
        }
        if let Some(i) = self.containers.iter().position(|c| c.pid == pid) {
            self.container_exited(i, status);
        } else if let Some((_, job)) = self.execs.iter_mut().find(|(_, j)| j.pid == pid) {
            job.status = Some(status);
        } else if let Some(p) = self.pause.as_mut().filter(|p| p.running && p.pid == pid) {
            p.running = false;
            let (exit_code, signal) = sys::decode_status(status);
            eprintln!("berth-monitor: pause process {pid} exited ({exit_code})");
            self.broadcast(&Event::PauseExited {
                pid,
                exit_code,
                signal,
            });
        }
    }

    /// Logs what is left in its pipes, writes `exit.json`, then tells clients.
    fn container_exited(&mut self, i: usize, status: i32) {
        let c = &mut self.containers[i];
        c.drain(&mut self.buf);
        let rec = c.set_exited(status).clone();
        c.attach.end_all(rec.exit_code);
        let id = c.id.clone();
        self.end_attach_sessions(i);
        if let Err(e) = records::write_exit(&self.cfg.state_dir, &id, &rec) {
            eprintln!("berth-monitor: container {id}: {e}");
        }
        self.save_pod_record();
        self.broadcast(&Event::Exited {
            id,
            pid: rec.pid,
            exit_code: rec.exit_code,
            signal: rec.signal,
            finished_at: rec.finished_at,
            oom_killed: rec.oom_killed,
        });
    }

    /// Exec deadlines, finished execs, log retries, closed connections.
    fn after_turn(&mut self) {
        let now = Instant::now();
        for (_, job) in &mut self.execs {
            job.check_deadline(now);
        }
        let mut i = 0;
        while i < self.execs.len() {
            match self.execs[i].1.status {
                Some(status) => {
                    let (_, job) = self.execs.swap_remove(i);
                    let (conn, req) = (job.conn, job.req);
                    let result = job.finish(&mut self.buf, status);
                    self.respond(
                        conn,
                        req,
                        serde_json::to_value(result)
                            .map_err(|e| MonitorError::json("exec result", e)),
                    );
                }
                None => i += 1,
            }
        }
        for c in &mut self.containers {
            if c.log_retry_at().is_some_and(|t| t <= now) {
                c.flush_log();
            }
        }
        self.detach_closed();
        for i in 0..self.containers.len() {
            self.end_attach_sessions(i);
        }
        self.conns.retain(|c| !c.done());
    }

    /// Sends the response to request `req` to connection `conn`, if still there.
    fn respond(&mut self, conn: u64, req: u64, result: Result<serde_json::Value>) {
        let resp = match result {
            Ok(v) => Response {
                req,
                result: Some(v),
                error: None,
            },
            Err(e) => Response {
                req,
                result: None,
                error: Some(e.to_string()),
            },
        };
        let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) else {
            return;
        };
        match serde_json::to_vec(&resp) {
            Ok(line) => c.send_line(&line),
            Err(e) => eprintln!("berth-monitor: serialize response: {e}"),
        }
    }

    /// Sends `ev` to every client.
    fn broadcast(&mut self, ev: &Event) {
        match serde_json::to_vec(ev) {
            Ok(line) => {
                for c in self.conns.iter_mut().filter(|c| !c.session) {
                    c.send_line(&line);
                }
            }
            Err(e) => eprintln!("berth-monitor: serialize event: {e}"),
        }
    }

    /// Writes `monitor.json`; an error is logged (the loop goes on).
    fn save_pod_record(&self) {
        let rec = PodRecord {
            pod_id: self.cfg.pod_id.clone(),
            monitor_pid: std::process::id() as i32,
            pause_pid: self.pause.as_ref().map(|p| p.pid),
            pod_cgroup: self.pause.as_ref().map(|p| p.cgroup.path().to_string()),
            containers: self.containers.iter().map(Container::record).collect(),
        };
        if let Err(e) = records::write_pod(&self.cfg.state_dir, &rec) {
            eprintln!("berth-monitor: {e}");
        }
    }
}
