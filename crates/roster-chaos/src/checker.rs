//! The checker: after a heal, waits until every live node shows the same names and group
//! members and no entry of an ended session remains (the convergence time is recorded),
//! then checks that state against the history; at the end, checks the history itself.
//!
//! Checks, each a [`Check`]:
//!
//! - [`Check::Converged`]: every live node shows the same names (owner and token) and
//!   group members, within the deadline;
//! - [`Check::Stale`]: no name or membership of a session that ended (deleted, expired,
//!   its node killed or stopped) or that the workload never made;
//! - [`Check::OneOwner`]: every live node shows the same single owner of a name;
//! - [`Check::Lost`]: a live session's acknowledged registration (or join), not undone
//!   by the session since, is visible, unless the audit log of some node reports it lost
//!   in a `name_conflict`;
//! - [`Check::TokenDecreased`]: the fencing tokens one node shows for a name only grow
//!   (reads in real-time order, checkpoint snapshots included);
//! - [`Check::TwoOwners`]: outside a fault window (injection to convergence after the
//!   heal), two live sessions were never both told they hold a name: the intervals from
//!   each acknowledgement to the earliest moment the hold could have ended do not
//!   overlap.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::history::{History, NodeEventKind, Op, OpKind, Outcome};
use crate::time::now_ms;
pub use crate::views::{Conflict, View, read_conflicts, read_view};

/// Which property a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// The nodes did not agree within the deadline.
    Converged,
    /// An entry of an ended session remained.
    Stale,
    /// Two nodes show different owners of a name.
    OneOwner,
    /// An acknowledged registration or join vanished without a reported conflict.
    Lost,
    /// A node showed a smaller fencing token for a name than it showed before.
    TokenDecreased,
    /// Two live sessions were both told they hold a name outside a fault window.
    TwoOwners,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::Converged => "converged",
            Self::Stale => "stale-entry",
            Self::OneOwner => "one-owner",
            Self::Lost => "lost-registration",
            Self::TokenDecreased => "token-decreased",
            Self::TwoOwners => "two-owners",
        };
        f.write_str(text)
    }
}

/// One violation, with the operations that show it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The property.
    pub check: Check,
    /// What is wrong.
    pub detail: String,
    /// The offending operations.
    pub ops: Vec<Op>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {}", self.check, self.detail)?;
        for op in &self.ops {
            writeln!(
                f,
                "    op#{} {:?} node=n{} worker={} session={} pid={} key={} {}..{} ms {:?} owner={:?} token={:?}",
                op.id,
                op.kind,
                op.node,
                op.worker,
                op.session.as_deref().unwrap_or("-"),
                op.pid.as_deref().unwrap_or("-"),
                op.key.as_deref().unwrap_or("-"),
                op.start_ms,
                op.end_ms,
                op.outcome,
                op.owner,
                op.token
            )?;
        }
        Ok(())
    }
}

/// What the history says about one session.
#[derive(Debug, Clone)]
struct SessionFacts {
    id: String,
    node: usize,
    created_ms: u64,
    /// The earliest moment it could have ended, if it may have.
    ended_ms: Option<u64>,
}

/// The sessions of the history, by pid, with the earliest moment each could have ended
/// (deletion sent, TTL lapsed after the last renewal that was sent, its node killed).
fn sessions(history: &History, ttl_ms: u64) -> HashMap<String, SessionFacts> {
    let mut out: HashMap<String, SessionFacts> = HashMap::new();
    let mut renewed: HashMap<String, u64> = HashMap::new();
    for op in &history.ops {
        let Some(pid) = &op.pid else { continue };
        match op.kind {
            OpKind::CreateSession if op.acked() => {
                out.insert(
                    pid.clone(),
                    SessionFacts {
                        id: op.session.clone().unwrap_or_default(),
                        node: op.node,
                        created_ms: op.start_ms,
                        ended_ms: None,
                    },
                );
                renewed.insert(pid.clone(), op.start_ms);
            }
            OpKind::Keepalive if op.acked() => {
                renewed.insert(pid.clone(), op.start_ms);
            }
            _ => {}
        }
    }
    for op in &history.ops {
        let Some(pid) = &op.pid else { continue };
        let Some(facts) = out.get_mut(pid) else {
            continue;
        };
        let lapse = renewed.get(pid).copied().unwrap_or(facts.created_ms) + ttl_ms;
        let end = match (op.kind, &op.outcome) {
            (OpKind::DeleteSession, _) => Some(op.start_ms),
            (OpKind::Abandon, _) => Some(lapse),
            (OpKind::Keepalive, Outcome::Refused(404, _)) => Some(lapse.min(op.start_ms)),
            _ => None,
        };
        if let Some(end) = end {
            facts.ended_ms = Some(facts.ended_ms.map_or(end, |e| e.min(end)));
        }
    }
    for event in &history.node_events {
        if matches!(
            event.kind,
            NodeEventKind::Killed | NodeEventKind::Terminated
        ) {
            for facts in out.values_mut() {
                if facts.node == event.node && facts.created_ms <= event.at_ms {
                    let end = event.at_ms;
                    facts.ended_ms = Some(facts.ended_ms.map_or(end, |e| e.min(end)));
                }
            }
        }
    }
    out
}

/// Figures and violations of one checkpoint.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// From the call to the nodes agreeing (none if they did not).
    pub converged_after: Option<Duration>,
    /// Acknowledged entries missing.
    pub lost: usize,
    /// Entries of ended sessions still shown at the deadline.
    pub stale: usize,
    /// What is wrong.
    pub violations: Vec<Violation>,
    /// The `name_conflict` rows of the live nodes' audit logs.
    pub conflicts: Vec<Conflict>,
}

/// Asks each session's agent whether the session is alive; `known_dead` caches the
/// sessions that are over.
fn live_pids(
    cluster: &Cluster,
    facts: &HashMap<String, SessionFacts>,
    known_dead: &mut BTreeSet<String>,
) -> BTreeSet<String> {
    let live_nodes: BTreeSet<usize> = cluster.live().into_iter().collect();
    let mut live = BTreeSet::new();
    for (pid, s) in facts {
        if known_dead.contains(pid) {
            continue;
        }
        if s.ended_ms.is_some_and(|e| e + 10_000 < now_ms()) && !live_nodes.contains(&s.node) {
            known_dead.insert(pid.clone());
            continue;
        }
        if !live_nodes.contains(&s.node) {
            continue;
        }
        let reply = cluster
            .client()
            .get(&cluster.url(s.node, &format!("/api/sessions/{}", s.id)));
        match reply.status() {
            Some(200) => {
                live.insert(pid.clone());
            }
            Some(404) => {
                known_dead.insert(pid.clone());
            }
            // No answer: count it live (its entries are not judged stale on a guess).
            _ => {
                live.insert(pid.clone());
            }
        }
    }
    live
}

/// Ops of the history that concern `pid` and `key`.
fn ops_of(history: &History, pid: &str, key: Option<&str>) -> Vec<Op> {
    history
        .ops
        .iter()
        .filter(|o| o.pid.as_deref() == Some(pid))
        .filter(|o| key.is_none() || o.key.as_deref() == key)
        .filter(|o| o.kind != OpKind::Keepalive && o.kind != OpKind::Dispatch)
        .cloned()
        .collect()
}

/// Waits (until `deadline`) for every live node to agree with no stale entry, then checks
/// the state against the history. The workload should be paused (keepalives on).
pub fn checkpoint(
    cluster: &Cluster,
    history: &crate::history::Recorder,
    ttl_ms: u64,
    deadline: Duration,
    known_dead: &mut BTreeSet<String>,
    snapshots: &mut Vec<(usize, u64, View)>,
) -> Checkpoint {
    let started = Instant::now();
    let mut report = Checkpoint::default();
    let live_nodes = cluster.live();
    let (views, live, converged) = loop {
        let facts = sessions(&history.lock(), ttl_ms);
        let at = now_ms();
        let views: Vec<Option<View>> = live_nodes
            .iter()
            .map(|i| read_view(cluster.client(), &cluster.url(*i, "")))
            .collect();
        let live = live_pids(cluster, &facts, known_dead);
        let all_read = views.iter().all(Option::is_some);
        let same = all_read && views.windows(2).all(|w| w[0] == w[1]);
        let clean = views.iter().flatten().all(|v| {
            v.names.values().all(|(pid, _)| live.contains(pid))
                && v.groups.values().flatten().all(|pid| live.contains(pid))
        });
        if same && clean {
            for (i, v) in live_nodes.iter().zip(&views) {
                if let Some(v) = v {
                    snapshots.push((*i, at, v.clone()));
                }
            }
            break (views, live, true);
        }
        if started.elapsed() >= deadline {
            break (views, live, false);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let h = history.lock();
    let facts = sessions(&h, ttl_ms);
    if converged {
        report.converged_after = Some(started.elapsed());
    } else {
        let mut detail = format!(
            "live nodes {:?} did not agree within {deadline:?}",
            live_nodes
                .iter()
                .map(|i| cluster.name(*i))
                .collect::<Vec<_>>()
        );
        let first = views.iter().flatten().next().cloned().unwrap_or_default();
        for (i, v) in live_nodes.iter().zip(&views) {
            match v {
                None => detail.push_str(&format!("; n{i} did not answer")),
                Some(v) if *v != first => {
                    for (k, owner) in &v.names {
                        if first.names.get(k) != Some(owner) {
                            detail.push_str(&format!(
                                "; n{i} shows {k} -> {owner:?}, n{} shows {:?}",
                                live_nodes[0],
                                first.names.get(k)
                            ));
                        }
                    }
                    for (k, owner) in &first.names {
                        if !v.names.contains_key(k) {
                            detail.push_str(&format!(
                                "; n{i} lacks {k} (n{} shows {owner:?})",
                                live_nodes[0]
                            ));
                        }
                    }
                    if v.groups != first.groups {
                        detail.push_str(&format!(
                            "; n{i} groups {:?} vs n{} {:?}",
                            v.groups, live_nodes[0], first.groups
                        ));
                    }
                }
                Some(_) => {}
            }
        }
        report.violations.push(Violation {
            check: Check::Converged,
            detail,
            ops: Vec::new(),
        });
        // One owner per name across the nodes.
        let mut owners: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for v in views.iter().flatten() {
            for (k, (pid, _)) in &v.names {
                owners.entry(k).or_default().insert(pid);
            }
        }
        for (k, pids) in owners.into_iter().filter(|(_, p)| p.len() > 1) {
            let mut ops = Vec::new();
            for pid in &pids {
                ops.extend(ops_of(&h, pid, Some(k)));
            }
            report.violations.push(Violation {
                check: Check::OneOwner,
                detail: format!("{k} has owners {pids:?} on different nodes"),
                ops,
            });
        }
    }
    // Stale entries: shown, but their session is over (or unknown).
    let mut stale: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, v) in live_nodes.iter().zip(&views) {
        let Some(v) = v else { continue };
        for (k, (pid, _)) in &v.names {
            if !live.contains(pid) {
                stale.entry((k.clone(), pid.clone())).or_default().push(*i);
            }
        }
        for (k, pids) in &v.groups {
            for pid in pids.iter().filter(|p| !live.contains(*p)) {
                stale.entry((k.clone(), pid.clone())).or_default().push(*i);
            }
        }
    }
    for ((k, pid), nodes) in stale {
        report.stale += 1;
        let why = match facts.get(&pid) {
            Some(f) => format!(
                "session {} of n{} ended at the earliest at {:?} ms",
                f.id, f.node, f.ended_ms
            ),
            None => "no session of the workload has this pid".to_owned(),
        };
        report.violations.push(Violation {
            check: Check::Stale,
            detail: format!("{k} -> {pid} still shown by {nodes:?}: {why}"),
            ops: ops_of(&h, &pid, Some(&k)),
        });
    }
    // Lost acknowledged registrations and joins of live sessions. The audit log is
    // written behind the node (a queue and a writer thread): a name missing without a
    // conflict in it is looked for again until a short deadline.
    let read_all = || -> Vec<Conflict> {
        live_nodes
            .iter()
            .flat_map(|i| read_conflicts(cluster.client(), &cluster.url(*i, "")))
            .collect()
    };
    let mut conflicts = read_all();
    let mut last: BTreeMap<(String, String, bool), &Op> = BTreeMap::new();
    for op in &h.ops {
        let (Some(pid), Some(key)) = (&op.pid, &op.key) else {
            continue;
        };
        let is_name = match op.kind {
            OpKind::Register | OpKind::Unregister => true,
            OpKind::Join | OpKind::Leave => false,
            _ => continue,
        };
        last.insert((pid.clone(), key.clone(), is_name), op);
    }
    let unexplained = |conflicts: &[Conflict]| {
        views.iter().flatten().any(|v| {
            h.ops.iter().any(|op| {
                op.kind == OpKind::Register
                    && op.acked()
                    && op.pid.as_ref().is_some_and(|p| live.contains(p))
                    && op.key.as_ref().is_some_and(|k| {
                        v.names.get(k).map(|(p, _)| p) != op.pid.as_ref()
                            && !conflicts
                                .iter()
                                .any(|c| &c.key == k && Some(&c.loser) == op.pid.as_ref())
                    })
            })
        })
    };
    let audit_deadline = Instant::now() + Duration::from_secs(3);
    while unexplained(&conflicts) && Instant::now() < audit_deadline {
        std::thread::sleep(Duration::from_millis(250));
        conflicts = read_all();
    }
    for ((pid, key, is_name), op) in &last {
        let (pid, key, is_name, op) = (pid.clone(), key.clone(), *is_name, *op);
        if !live.contains(&pid) || !op.acked() {
            continue;
        }
        for (i, v) in live_nodes.iter().zip(&views) {
            let Some(v) = v else { continue };
            let present = match op.kind {
                OpKind::Register => v.names.get(&key).is_some_and(|(p, _)| *p == pid),
                OpKind::Join => v.groups.get(&key).is_some_and(|m| m.contains(&pid)),
                _ => true,
            };
            let lost_in_conflict = is_name
                && conflicts
                    .iter()
                    .any(|c| c.key == key && c.loser == pid && c.at_ms + 1000 >= op.start_ms);
            if !present && !lost_in_conflict {
                report.lost += 1;
                let about_key: Vec<&Conflict> = conflicts.iter().filter(|c| c.key == key).collect();
                let session = facts.get(&pid).map(|f| {
                    let reply = cluster
                        .client()
                        .get(&cluster.url(f.node, &format!("/api/sessions/{}", f.id)));
                    format!("n{}: {:?}", f.node, reply.ok())
                });
                report.violations.push(Violation {
                    check: Check::Lost,
                    detail: format!(
                        "n{i} does not show {key} -> {pid} (acknowledged, session alive, no conflict reported; n{i} shows {:?}; conflicts on the key: {about_key:?}; session {session:?})",
                        if is_name {
                            format!("{:?}", v.names.get(&key))
                        } else {
                            format!("{:?}", v.groups.get(&key))
                        }
                    ),
                    ops: ops_of(&h, &pid, Some(&key)),
                });
                break;
            }
        }
    }
    drop(h);
    report.conflicts = conflicts;
    report
}

/// A token one node showed: (start ms, end ms, token, the read; none for a snapshot).
type Seen<'a> = (u64, u64, u64, Option<&'a Op>);

/// The checks over the whole history: tokens only grow, never two owners told outside
/// a fault window.
pub fn check_history(
    history: &History,
    conflicts: &[Conflict],
    snapshots: &[(usize, u64, View)],
    ttl_ms: u64,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    // Tokens per (key, node) in real-time order: a read that ended before another began
    // must not show a larger token.
    let mut reads: BTreeMap<(String, usize), Vec<Seen<'_>>> = BTreeMap::new();
    for op in &history.ops {
        if let (OpKind::Read, Some(key), Some(token)) = (op.kind, &op.key, op.token) {
            reads.entry((key.clone(), op.node)).or_default().push((
                op.start_ms,
                op.end_ms,
                token,
                Some(op),
            ));
        }
    }
    for (node, at, view) in snapshots {
        for (key, (_, token)) in &view.names {
            reads
                .entry((key.clone(), *node))
                .or_default()
                .push((*at, *at, *token, None));
        }
    }
    for ((key, node), mut list) in reads {
        list.sort_by_key(|r| (r.1, r.0));
        // The largest token among the reads that ended before the current one started.
        let mut best: Option<(u64, u64, Option<&Op>)> = None; // (end, token, op)
        let mut by_start = list.clone();
        by_start.sort_by_key(|r| r.0);
        let mut j = 0;
        for (start, _end, token, op) in by_start {
            while j < list.len() && list[j].1 < start {
                let (_, e, t, o) = list[j];
                if best.is_none_or(|b| t > b.1) {
                    best = Some((e, t, o));
                }
                j += 1;
            }
            if let Some((_, before, before_op)) = best
                && token < before
            {
                let mut ops: Vec<Op> = before_op.into_iter().cloned().collect();
                ops.extend(op.cloned());
                violations.push(Violation {
                    check: Check::TokenDecreased,
                    detail: format!(
                        "n{node} showed {key} with token {before}, later with {token}{}",
                        if op.is_none() {
                            " (checkpoint snapshot)"
                        } else {
                            ""
                        }
                    ),
                    ops,
                });
                // One report per (key, node) and drop: start again from this read.
                best = Some((start, token, op));
            }
        }
    }
    // Two owners told outside a fault window.
    let facts = sessions(history, ttl_ms);
    // When each session asked to unregister each name, in order.
    let mut unregisters: HashMap<(&str, &str), Vec<(usize, u64)>> = HashMap::new();
    for (index, op) in history.ops.iter().enumerate() {
        if let (OpKind::Unregister, Some(pid), Some(key)) = (op.kind, &op.pid, &op.key) {
            unregisters
                .entry((pid.as_str(), key.as_str()))
                .or_default()
                .push((index, op.start_ms));
        }
    }
    let mut holds: BTreeMap<&str, Vec<(u64, u64, &Op)>> = BTreeMap::new();
    for (index, op) in history.ops.iter().enumerate() {
        if op.kind != OpKind::Register || !op.acked() {
            continue;
        }
        let (Some(pid), Some(key)) = (&op.pid, &op.key) else {
            continue;
        };
        let mut end = facts.get(pid).and_then(|f| f.ended_ms).unwrap_or(u64::MAX);
        if let Some((_, next)) = unregisters
            .get(&(pid.as_str(), key.as_str()))
            .and_then(|list| list.iter().find(|(i, _)| *i > index))
        {
            end = end.min(*next);
        }
        if let Some(lost) = conflicts
            .iter()
            .filter(|c| c.key == *key && c.loser == *pid && c.at_ms + 1000 >= op.start_ms)
            .map(|c| c.at_ms)
            .min()
        {
            end = end.min(lost);
        }
        holds.entry(key).or_default().push((op.end_ms, end, op));
    }
    let in_window = |t: u64| history.windows.iter().any(|w| w.covers(t));
    for (key, list) in holds {
        let mut reported = BTreeSet::new();
        for (a, (a_told, a_end, a_op)) in list.iter().enumerate() {
            for (b_told, b_end, b_op) in &list[a + 1..] {
                if a_op.pid == b_op.pid {
                    continue;
                }
                let from = (*a_told).max(*b_told);
                let to = (*a_end).min(*b_end);
                if from < to && !in_window(from) && reported.insert((a_op.id, b_op.id)) {
                    violations.push(Violation {
                        check: Check::TwoOwners,
                        detail: format!(
                            "{key}: {} and {} both acknowledged as owner from {from} ms until {} (no fault window)",
                            a_op.pid.as_deref().unwrap_or("?"),
                            b_op.pid.as_deref().unwrap_or("?"),
                            if to == u64::MAX { "the end".to_owned() } else { format!("{to} ms ({} ms)", to - from) }
                        ),
                        ops: with_session_tail(history, &[a_op, b_op]),
                    });
                }
            }
        }
    }
    violations
}

/// How many of a session's last operations a two-owners report shows beside the two
/// registrations: what the session did around them (keepalives, unregisters, its end) is
/// what tells a lost name from a session that ended unseen.
const SESSION_TAIL: usize = 12;

/// `ops`, then the last [`SESSION_TAIL`] other operations of each of their sessions.
fn with_session_tail(history: &History, ops: &[&Op]) -> Vec<Op> {
    let mut shown: Vec<Op> = ops.iter().map(|op| (*op).clone()).collect();
    for op in ops {
        let Some(session) = &op.session else {
            continue;
        };
        let mut tail: Vec<&Op> = history
            .ops
            .iter()
            .filter(|o| o.session.as_ref() == Some(session) && !ops.iter().any(|x| x.id == o.id))
            .collect();
        let skip = tail.len().saturating_sub(SESSION_TAIL);
        shown.extend(tail.drain(skip..).cloned());
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::FaultWindow;

    fn op(kind: OpKind, pid: &str, key: &str, start_ms: u64, end_ms: u64) -> Op {
        Op {
            id: 0,
            worker: 0,
            node: 0,
            kind,
            session: Some(format!("s{pid}")),
            pid: Some(pid.to_owned()),
            key: Some(key.to_owned()),
            start_ms,
            end_ms,
            outcome: Outcome::Ok,
            owner: None,
            token: None,
        }
    }

    fn history(ops: Vec<Op>) -> History {
        let mut h = History::default();
        for (i, mut o) in ops.into_iter().enumerate() {
            o.id = i;
            h.ops.push(o);
        }
        h
    }

    fn read(node: usize, key: &str, at: u64, token: u64) -> Op {
        Op {
            kind: OpKind::Read,
            node,
            session: None,
            pid: None,
            token: Some(token),
            ..op(OpKind::Read, "-", key, at, at + 1)
        }
    }

    fn two_owners() -> History {
        history(vec![
            op(OpKind::CreateSession, "a", "", 0, 1),
            op(OpKind::CreateSession, "b", "", 0, 1),
            op(OpKind::Register, "a", "k", 10, 11),
            op(OpKind::Register, "b", "k", 20, 21),
        ])
    }

    #[test]
    fn two_acknowledged_owners_outside_a_window_are_a_violation() {
        let v = check_history(&two_owners(), &[], &[], 60_000);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, Check::TwoOwners);
        let kinds: Vec<OpKind> = v[0].ops.iter().map(|o| o.kind).collect();
        assert_eq!(
            kinds,
            [
                OpKind::Register,
                OpKind::Register,
                OpKind::CreateSession,
                OpKind::CreateSession
            ],
            "the two registrations, then what each session did besides"
        );
    }

    #[test]
    fn two_owners_inside_a_fault_window_are_not() {
        let mut h = two_owners();
        h.windows.push(FaultWindow {
            label: "isolate".into(),
            start_ms: 5,
            heal_ms: Some(30),
            converged_ms: Some(40),
        });
        assert!(check_history(&h, &[], &[], 60_000).is_empty());
    }

    #[test]
    fn an_unregister_or_a_conflict_loss_ends_the_first_hold() {
        let mut h = two_owners();
        h.ops.insert(3, op(OpKind::Unregister, "a", "k", 15, 16));
        assert!(check_history(&h, &[], &[], 60_000).is_empty());
        let lost = Conflict {
            at_ms: 20,
            key: "k".into(),
            winner: "b".into(),
            loser: "a".into(),
        };
        assert!(check_history(&two_owners(), &[lost], &[], 60_000).is_empty());
    }

    #[test]
    fn a_token_that_goes_down_on_one_node_is_a_violation() {
        let h = history(vec![
            read(0, "k", 10, 7),
            read(1, "k", 20, 5),
            read(0, "k", 30, 6),
        ]);
        let v = check_history(&h, &[], &[], 60_000);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, Check::TokenDecreased);
        let h = history(vec![read(0, "k", 10, 7), read(0, "k", 30, 9)]);
        assert!(check_history(&h, &[], &[], 60_000).is_empty());
    }
}
