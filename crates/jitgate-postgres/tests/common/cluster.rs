//! A PostgreSQL primary and a streaming standby of its own, started from the machine's
//! PostgreSQL binaries on loopback ports for the failover test and the standby benchmark
//! (`benches/standby.rs` includes this file). Everything lives in one temporary directory,
//! removed (with both servers stopped) on drop.
//!
//! The binaries are found with `JITGATE_PG_BINDIR`, else `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package). As root, the servers run as
//! the `postgres` user (PostgreSQL refuses to run as root).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One server: its data directory and port.
struct Node {
    data: PathBuf,
    port: u16,
}

/// A primary and a standby; which is which changes with each failover.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    /// `runuser -u postgres --` as root, nothing otherwise.
    run_as: Vec<String>,
    nodes: [Node; 2],
    primary: usize,
    /// Whether the primary waits for the standby at commit (`synchronous_standby_names`).
    synchronous: bool,
    /// Whether the standby runs (it does not between a failover and [`Cluster::rejoin`]).
    standby_up: bool,
}

/// Where the PostgreSQL server binaries are, if anywhere.
pub fn binaries() -> Option<PathBuf> {
    let has_initdb = |p: &Path| p.join("initdb").is_file().then(|| p.to_path_buf());
    if let Some(dir) = std::env::var_os("JITGATE_PG_BINDIR") {
        return has_initdb(Path::new(&dir));
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| has_initdb(Path::new(String::from_utf8_lossy(&o.stdout).trim())));
    from_pg_config.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort();
        versions.into_iter().rev().find_map(|(_, p)| has_initdb(&p))
    })
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().unwrap().port()
}

fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Cluster {
    /// initdb a primary, start it, and stream a standby from it with `pg_basebackup -R`;
    /// with `synchronous`, the primary waits for the standby at every commit.
    pub fn start(bin: PathBuf, synchronous: bool) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("jitgate-cluster-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let root = sh(Command::new("id").arg("-u"))?.trim() == "0";
        let run_as = if root {
            let uid: u32 = sh(Command::new("id").args(["-u", "postgres"]))?
                .trim()
                .parse()
                .map_err(|_| "uid")?;
            let gid: u32 = sh(Command::new("id").args(["-g", "postgres"]))?
                .trim()
                .parse()
                .map_err(|_| "gid")?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
            ["runuser", "-u", "postgres", "--"].map(String::from).to_vec()
        } else {
            Vec::new()
        };
        let mut cluster = Cluster {
            nodes: [
                Node {
                    data: dir.join("a"),
                    port: free_port(),
                },
                Node {
                    data: dir.join("b"),
                    port: free_port(),
                },
            ],
            dir,
            bin,
            run_as,
            primary: 0,
            synchronous,
            standby_up: false,
        };
        let a = cluster.nodes[0].data.to_string_lossy().into_owned();
        cluster.pg(
            "initdb",
            &["-D", &a, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
        )?;
        cluster.configure(0, synchronous)?;
        cluster.start_node(0)?;
        cluster.rejoin()?;
        Ok(cluster)
    }

    fn pg(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let mut cmd = match self.run_as.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(self.bin.join(program));
                c
            }
            None => Command::new(self.bin.join(program)),
        };
        sh(cmd.args(args))
    }

    /// Appends this node's settings to its `postgresql.conf` (later lines win).
    fn configure(&self, i: usize, synchronous: bool) -> Result<(), String> {
        use std::io::Write as _;
        let node = &self.nodes[i];
        let conf = format!(
            "\n# jitgate failover test\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             wal_level = replica\nmax_wal_senders = 4\nshared_buffers = 32MB\nmax_connections = 100\n\
             synchronous_commit = on\nsynchronous_standby_names = '{}'\nwal_keep_size = 128MB\n",
            node.port,
            self.dir.display(),
            if synchronous { "*" } else { "" }
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(node.data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| e.to_string())
    }

    fn start_node(&self, i: usize) -> Result<(), String> {
        let node = &self.nodes[i];
        let data = node.data.to_string_lossy().into_owned();
        let log = self.dir.join(format!("node{i}.log")).to_string_lossy().into_owned();
        self.pg("pg_ctl", &["-D", &data, "-l", &log, "-w", "-t", "60", "start"])
            .map(drop)
    }

    /// Runs `sql` on the primary (as a superuser), returning what `psql -At` prints.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        sh(Command::new(self.bin.join("psql")).args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.nodes[self.primary].port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ]))
    }

    /// A libpq-style URL naming both servers, primary first.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
            self.nodes[0].port, self.nodes[1].port
        )
    }

    /// The URL of the primary alone.
    pub fn primary_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.nodes[self.primary].port
        )
    }

    /// Stops the primary at once (`pg_ctl stop -m immediate`: no checkpoint, every connection
    /// cut, as a crash would).
    pub fn kill_primary(&mut self) -> Result<(), String> {
        let data = self.nodes[self.primary].data.to_string_lossy().into_owned();
        self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .map(drop)
    }

    /// Promotes the standby and, as an HA manager does while no standby is left, stops making
    /// commits wait for one (until [`Cluster::rejoin`]).
    pub fn promote(&mut self) -> Result<(), String> {
        let standby = 1 - self.primary;
        let data = self.nodes[standby].data.to_string_lossy().into_owned();
        self.pg("pg_ctl", &["-D", &data, "-w", "-t", "60", "promote"])?;
        self.primary = standby;
        self.standby_up = false;
        self.psql("ALTER SYSTEM SET synchronous_standby_names = ''")?;
        self.psql("SELECT pg_reload_conf()").map(drop)
    }

    /// Makes the other node a fresh standby of the primary (`pg_basebackup -R`), starts it,
    /// and, for a synchronous cluster, waits until it is the synchronous standby.
    pub fn rejoin(&mut self) -> Result<(), String> {
        let standby = 1 - self.primary;
        let data = self.nodes[standby].data.clone();
        if data.exists() {
            std::fs::remove_dir_all(&data).map_err(|e| e.to_string())?;
        }
        let port = self.nodes[self.primary].port.to_string();
        let data_s = data.to_string_lossy().into_owned();
        self.pg(
            "pg_basebackup",
            &[
                "-D",
                &data_s,
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        )?;
        // A standby's own `synchronous_standby_names` only matters once it is promoted.
        self.configure(standby, false)?;
        self.start_node(standby)?;
        self.standby_up = true;
        self.set_synchronous(self.synchronous)
    }

    /// Turns waiting for the standby at commit on or off on the primary; on waits until the
    /// standby is synchronous.
    pub fn set_synchronous(&mut self, on: bool) -> Result<(), String> {
        self.synchronous = on;
        let names = if on { "*" } else { "" };
        self.psql(&format!("ALTER SYSTEM SET synchronous_standby_names = '{names}'"))?;
        self.psql("SELECT pg_reload_conf()")?;
        if !on || !self.standby_up {
            return Ok(());
        }
        let start = Instant::now();
        loop {
            let sync = self.psql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")?;
            if sync.trim() == "1" {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err("the standby did not become synchronous within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            if node.data.join("postmaster.pid").exists() {
                let data = node.data.to_string_lossy().into_owned();
                let _ = self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
