//! The requests: parsing a line, doing the work, answering. Everything but
//! `exec_sync` is answered at once; `exec_sync` is answered by the loop when
//! its process has been reaped. `exec_stream` and `attach` start sessions
//! (see `sessions`).

use serde_json::{json, Value};

use berth_runtime::container as runtime;

use super::{container, exec_sync, pause, sys, Monitor};
use crate::monitor::{
    error::{MonitorError, Result},
    protocol::{
        ContainerState, CreateRequest, Event, ListReply, PauseConfig, PidReply, Request,
        RequestEnvelope,
    },
    records, LOG_NAME,
};

/// Just the request number, to answer a request that did not parse.
#[derive(serde::Deserialize)]
struct ReqNumber {
    req: u64,
}

/// Gives freed heap memory back to the kernel (the monitor's RSS is per pod).
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| MonitorError::json("reply", e))
}

impl Monitor {
    pub(super) fn handle_line(&mut self, conn: u64, line: &[u8]) {
        let env: RequestEnvelope = match serde_json::from_slice(line) {
            Ok(env) => env,
            Err(e) => {
                let req = serde_json::from_slice::<ReqNumber>(line).map_or(0, |r| r.req);
                self.respond(conn, req, Err(MonitorError::json("request", e)));
                return;
            }
        };
        let req = env.req;
        // The runtime's create and exec parse specs and leave a grown heap.
        let heavy = matches!(
            env.body,
            Request::StartPause(_)
                | Request::Create(_)
                | Request::ExecSync(_)
                | Request::ExecStream(_)
                | Request::Remove { .. }
        );
        self.handle(conn, req, env.body);
        if heavy {
            trim_heap();
        }
    }

    fn handle(&mut self, conn: u64, req: u64, body: Request) {
        let result = match body {
            Request::ExecSync(r) => {
                match self
                    .find(&r.id)
                    .and_then(|_| exec_sync::start(&self.root, &r, conn, req))
                {
                    Ok(job) => {
                        let key = self.key();
                        self.execs.push((key, job));
                        return;
                    }
                    Err(e) => Err(e),
                }
            }
            Request::ExecStream(r) => return self.start_exec_stream(conn, req, &r),
            Request::Attach(r) => return self.start_attach(conn, req, &r),
            Request::StartPause(cfg) => self.start_pause(&cfg),
            Request::StopPause => self.stop_pause().map(|()| json!({})),
            Request::Create(r) => self.create(&r),
            Request::Start { id } => self.start(&id),
            Request::Kill { id, signal, all } => self.kill(&id, signal, all),
            Request::ReopenLog { id } => self
                .find(&id)
                .and_then(|i| self.containers[i].reopen_log())
                .map(|()| json!({})),
            Request::Remove { id } => self.remove(&id).map(|()| json!({})),
            Request::List => to_value(ListReply {
                pause_pid: self.pause.as_ref().filter(|p| p.running).map(|p| p.pid),
                containers: self.containers.iter().map(|c| c.status()).collect(),
            }),
            Request::Shutdown => {
                self.shutdown();
                self.respond(conn, req, Ok(json!({})));
                for c in &mut self.conns {
                    c.flush_blocking();
                }
                self.exit_requested = true;
                return;
            }
        };
        self.respond(conn, req, result);
    }

    pub(super) fn find(&self, id: &str) -> Result<usize> {
        self.containers
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| MonitorError::UnknownContainer(id.to_string()))
    }

    fn start_pause(&mut self, cfg: &PauseConfig) -> Result<Value> {
        if let Some(p) = &self.pause {
            return Err(MonitorError::PauseExists(p.pid));
        }
        let p = pause::start(cfg, &self.cfg.pod_id)?;
        let pid = p.pid;
        self.pause = Some(p);
        self.save_pod_record();
        to_value(PidReply { pid })
    }

    /// Kills and reaps the pause process; its cgroup stays until shutdown.
    /// Stopping a pod twice, or one whose pause already exited, is fine.
    fn stop_pause(&mut self) -> Result<()> {
        if let Some(p) = self.pause.as_mut().filter(|p| p.running) {
            sys::kill_and_reap(p.pid);
            p.running = false;
        }
        Ok(())
    }

    fn create(&mut self, r: &CreateRequest) -> Result<Value> {
        if self.find(&r.id).is_ok() {
            return Err(MonitorError::ContainerExists(r.id.clone()));
        }
        let key = self.key();
        let c = container::create(&self.root, &self.cfg.state_dir, r, key)?;
        let pid = c.pid;
        self.containers.push(c);
        self.save_pod_record();
        to_value(PidReply { pid })
    }

    fn start(&mut self, id: &str) -> Result<Value> {
        let i = self.find(id)?;
        let state = self.containers[i].state;
        if state != ContainerState::Created {
            return Err(MonitorError::WrongState {
                id: id.into(),
                state: state.as_str(),
                op: "start",
            });
        }
        runtime::start(&self.root, id)?;
        let c = &mut self.containers[i];
        let started_at = c.set_started();
        let pid = c.pid;
        self.save_pod_record();
        self.broadcast(&Event::Started {
            id: id.into(),
            pid,
            started_at,
        });
        Ok(json!({}))
    }

    fn kill(&mut self, id: &str, signal: i32, all: bool) -> Result<Value> {
        let i = self.find(id)?;
        let state = self.containers[i].state;
        if state == ContainerState::Exited {
            return Err(MonitorError::WrongState {
                id: id.into(),
                state: state.as_str(),
                op: "kill",
            });
        }
        runtime::kill(&self.root, id, signal, all)?;
        Ok(json!({}))
    }

    /// Kills the container if it still runs (and records its exit), deletes it
    /// through the runtime, removes its state directory and forgets it.
    fn remove(&mut self, id: &str) -> Result<()> {
        let i = self.find(id)?;
        if self.containers[i].state != ContainerState::Exited {
            let c = &self.containers[i];
            c.kill_all();
            if let Some(status) = sys::wait_raw(c.pid) {
                self.container_exited(i, status);
            }
        }
        runtime::delete(&self.root, id, true)?;
        let mut c = self.containers.remove(i);
        c.close_output();
        let dir = records::container_dir(&self.cfg.state_dir, id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("berth-monitor: remove {}: {e}", dir.display());
            }
        }
        self.save_pod_record();
        Ok(())
    }

    /// Removes every container, kills the pause process, removes the pod
    /// cgroup, the socket and the monitor's files.
    fn shutdown(&mut self) {
        let ids: Vec<String> = self.containers.iter().map(|c| c.id.clone()).collect();
        for id in ids {
            if let Err(e) = self.remove(&id) {
                eprintln!("berth-monitor: shutdown: container {id}: {e}");
            }
        }
        for (_, job) in &self.execs {
            sys::kill_and_reap(job.pid);
        }
        self.execs.clear();
        // Streaming execs still running: killed, their sessions told.
        let pids: Vec<i32> = self.stream_execs.iter().map(|s| s.pid).collect();
        for pid in pids {
            sys::kill_hard(pid);
            if let Some(status) = sys::wait_raw(pid) {
                self.stream_exec_exited(pid, status);
            }
        }
        self.stream_execs.clear();
        if let Some(p) = self.pause.take() {
            if p.running {
                sys::kill_and_reap(p.pid);
            }
            if let Err(e) = p.cgroup.destroy() {
                eprintln!("berth-monitor: shutdown: {e}");
            }
        }
        let state = &self.cfg.state_dir;
        let run = &self.cfg.run_dir;
        for f in [
            state.join(records::POD_RECORD),
            self.cfg.socket(),
            run.join(LOG_NAME),
        ] {
            let _ = std::fs::remove_file(f);
        }
        for d in [state.join("containers"), state.clone(), run.clone()] {
            // Only when empty: the directories may hold berthd's files too.
            let _ = std::fs::remove_dir(d);
        }
        eprintln!("berth-monitor: pod {} shut down", self.cfg.pod_id);
    }
}
