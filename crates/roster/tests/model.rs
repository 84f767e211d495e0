//! Model-based test: random operations from several processes against a sequential model.
//!
//! After every step every query is compared with the model, the result (or error) of the
//! step itself is compared with the model's, and so is what an `All` subscription received.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::queued_or_end;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use roster::{
    Delivery, Dispatched, Entry, Event, EventKind, ExitReason, Meta, Node, Pattern, Pid, Process,
    Reason, Registration, RegistryError, Subscription, Table,
};

/// A small key space with nested levels so that prefixes overlap.
const KEYS: [&str; 7] = ["a", "b", "a/1", "a/2", "a/1/x", "b/1", "ab"];
/// Prefixes to query (`""` is "all" where an API accepts it).
const PREFIXES: [&str; 5] = ["a/", "a/1/", "b/", "c/", "a/1/x/"];
const LIMITS: [usize; 4] = [0, 1, 2, usize::MAX];

#[derive(Debug, Clone)]
enum Op {
    NewProcess,
    Register { proc: usize, key: usize, meta: u8 },
    Unregister { proc: usize, key: usize },
    Join { proc: usize, key: usize, meta: u8 },
    Leave { proc: usize, key: usize },
    Drop { proc: usize },
    Kill { proc: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let proc = 0usize..8;
    let key = 0..KEYS.len();
    let meta = 0u8..3;
    prop_oneof![
        2 => Just(Op::NewProcess),
        6 => (proc.clone(), key.clone(), meta.clone())
            .prop_map(|(proc, key, meta)| Op::Register { proc, key, meta }),
        3 => (proc.clone(), key.clone()).prop_map(|(proc, key)| Op::Unregister { proc, key }),
        6 => (proc.clone(), key.clone(), meta)
            .prop_map(|(proc, key, meta)| Op::Join { proc, key, meta }),
        3 => (proc.clone(), key).prop_map(|(proc, key)| Op::Leave { proc, key }),
        1 => proc.clone().prop_map(|proc| Op::Drop { proc }),
        1 => proc.prop_map(|proc| Op::Kill { proc }),
    ]
}

fn meta(value: u8) -> Meta {
    Meta::encode(&value).unwrap()
}

/// The sequential model: what a single node must look like.
#[derive(Default)]
struct Model {
    /// key -> (owner, meta, registered_at, token) of live names.
    names: BTreeMap<&'static str, (Pid, u8, u64, u64)>,
    /// key -> members in join order, with their meta.
    groups: BTreeMap<&'static str, Vec<(Pid, u8)>>,
    alive: BTreeSet<Pid>,
    /// Highest fencing token handed out per key, to check that tokens grow.
    tokens: BTreeMap<&'static str, u64>,
}

impl Model {
    fn event(
        kind: EventKind,
        key: &str,
        pid: Pid,
        m: u8,
        previous: Option<u8>,
        reason: Reason,
    ) -> Event {
        Event {
            kind,
            scope: "default".into(),
            key: key.into(),
            pid,
            meta: meta(m),
            previous_meta: previous.map(meta),
            reason,
        }
    }

    /// Removes everything `pid` holds; returns the removal events.
    fn exit(&mut self, pid: Pid, reason: ExitReason) -> Vec<Event> {
        if !self.alive.remove(&pid) {
            return Vec::new();
        }
        let reason = Reason::Exit(reason);
        let mut events = Vec::new();
        self.names.retain(|key, (owner, m, _, _)| {
            if *owner == pid {
                events.push(Self::event(
                    EventKind::Unregistered,
                    key,
                    pid,
                    *m,
                    None,
                    reason.clone(),
                ));
                false
            } else {
                true
            }
        });
        for (key, members) in &mut self.groups {
            if let Some(i) = members.iter().position(|(p, _)| *p == pid) {
                let (_, m) = members.remove(i);
                events.push(Self::event(
                    EventKind::Left,
                    key,
                    pid,
                    m,
                    None,
                    reason.clone(),
                ));
            }
        }
        self.groups.retain(|_, members| !members.is_empty());
        events
    }

    fn names_under(&self, prefix: &str) -> Vec<(String, Pid, Meta)> {
        self.names
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, (p, m, _, _))| (k.to_string(), *p, meta(*m)))
            .collect()
    }

    /// Members under a prefix (or of an exact key), in key order then join order.
    fn members_of(&self, key: &str) -> Vec<(Pid, Meta)> {
        let prefix = key.ends_with('/');
        self.groups
            .iter()
            .filter(|(k, _)| {
                if prefix {
                    k.starts_with(key)
                } else {
                    **k == key
                }
            })
            .flat_map(|(_, members)| members.iter().map(|(p, m)| (*p, meta(*m))))
            .collect()
    }

    fn memberships_under(&self, prefix: &str) -> Vec<Entry> {
        self.groups
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .flat_map(|(k, members)| {
                members.iter().map(move |(p, m)| Entry {
                    key: (*k).into(),
                    pid: *p,
                    meta: meta(*m),
                })
            })
            .collect()
    }

    fn name_entries_under(&self, prefix: &str) -> Vec<Entry> {
        self.names_under(prefix)
            .into_iter()
            .map(|(key, pid, meta)| Entry {
                key: key.into(),
                pid,
                meta,
            })
            .collect()
    }
}

/// The system under test and everything the test remembers about it.
struct Harness {
    node: Node,
    events: Subscription,
    /// Live handles (alive or killed), in creation order.
    handles: Vec<Process>,
    /// Every pid ever created, to query dead ones too.
    pids: Vec<Pid>,
    model: Model,
}

fn sorted_events(mut events: Vec<Event>) -> Vec<Event> {
    events.sort_by_key(|e| (e.key.to_string(), format!("{:?}", e.kind), e.pid));
    events
}

fn sorted_entries(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by_key(|e| (e.key.to_string(), e.pid));
    entries
}

fn even_meta(e: &Entry) -> bool {
    e.meta.decode::<u8>().unwrap().is_multiple_of(2)
}

/// The handle an operation's process index designates, if there is any handle.
fn pick(handles: &[Process], proc: usize) -> Option<&Process> {
    (!handles.is_empty()).then(|| &handles[proc % handles.len()])
}

impl Harness {
    fn new() -> Self {
        let node = Node::builder()
            .subscription_capacity(1 << 20)
            .start()
            .unwrap();
        let events = node.default_scope().subscribe(Pattern::All).unwrap();
        Self {
            node,
            events,
            handles: Vec::new(),
            pids: Vec::new(),
            model: Model::default(),
        }
    }

    /// Applies one operation to both sides; returns the expected event batch (if any).
    fn step(&mut self, op: &Op) -> Result<Option<Vec<Event>>, TestCaseError> {
        let model = &mut self.model;
        let expected = match *op {
            Op::NewProcess => {
                let p = self.node.new_process();
                model.alive.insert(p.pid());
                self.pids.push(p.pid());
                self.handles.push(p);
                None
            }
            Op::Register { proc, key, meta: m } => {
                let Some(p) = pick(&self.handles, proc) else {
                    return Ok(None);
                };
                let (pid, key) = (p.pid(), KEYS[key]);
                let got = p.register(key, &m);
                match model.names.get(key).copied() {
                    Some((owner, old, at, token)) if owner == pid => {
                        let want = Registration {
                            pid,
                            meta: meta(m),
                            registered_at: at,
                            token,
                        };
                        prop_assert_eq!(got, Ok(want));
                        if old == m {
                            None
                        } else {
                            model.names.insert(key, (pid, m, at, token));
                            Some(vec![Model::event(
                                EventKind::Registered,
                                key,
                                pid,
                                m,
                                Some(old),
                                Reason::Requested,
                            )])
                        }
                    }
                    Some((owner, old, _, _)) => {
                        prop_assert_eq!(
                            got,
                            Err(RegistryError::Taken {
                                key: key.into(),
                                owner,
                                meta: meta(old)
                            })
                        );
                        None
                    }
                    None if !model.alive.contains(&pid) => {
                        prop_assert_eq!(got, Err(RegistryError::ProcessDead { pid }));
                        None
                    }
                    None => {
                        let got = got.map_err(|e| TestCaseError::fail(format!("register: {e}")))?;
                        prop_assert_eq!((got.pid, got.meta.clone()), (pid, meta(m)));
                        if let Some(&last) = model.tokens.get(key) {
                            prop_assert!(got.token > last, "a new owner gets a larger token");
                        }
                        model.tokens.insert(key, got.token);
                        model
                            .names
                            .insert(key, (pid, m, got.registered_at, got.token));
                        Some(vec![Model::event(
                            EventKind::Registered,
                            key,
                            pid,
                            m,
                            None,
                            Reason::Requested,
                        )])
                    }
                }
            }
            Op::Unregister { proc, key } => {
                let Some(p) = pick(&self.handles, proc) else {
                    return Ok(None);
                };
                let (pid, key) = (p.pid(), KEYS[key]);
                let got = p.unregister(key);
                match model.names.get(key).copied() {
                    Some((owner, m, _, _)) if owner == pid => {
                        prop_assert_eq!(got, Ok(()));
                        model.names.remove(key);
                        Some(vec![Model::event(
                            EventKind::Unregistered,
                            key,
                            pid,
                            m,
                            None,
                            Reason::Requested,
                        )])
                    }
                    Some((owner, _, _, _)) => {
                        prop_assert_eq!(
                            got,
                            Err(RegistryError::NotOwner {
                                key: key.into(),
                                owner
                            })
                        );
                        None
                    }
                    None => {
                        prop_assert_eq!(got, Err(RegistryError::NotRegistered { key: key.into() }));
                        None
                    }
                }
            }
            Op::Join { proc, key, meta: m } => {
                let Some(p) = pick(&self.handles, proc) else {
                    return Ok(None);
                };
                let (pid, key) = (p.pid(), KEYS[key]);
                let got = p.join(key, &m);
                let members = model.groups.entry(key).or_default();
                let expected = match members.iter().position(|(q, _)| *q == pid) {
                    Some(i) => {
                        prop_assert_eq!(got, Ok(()));
                        let old = members[i].1;
                        members[i].1 = m;
                        (old != m).then(|| {
                            vec![Model::event(
                                EventKind::Joined,
                                key,
                                pid,
                                m,
                                Some(old),
                                Reason::Requested,
                            )]
                        })
                    }
                    None if !model.alive.contains(&pid) => {
                        prop_assert_eq!(got, Err(RegistryError::ProcessDead { pid }));
                        None
                    }
                    None => {
                        prop_assert_eq!(got, Ok(()));
                        members.push((pid, m));
                        Some(vec![Model::event(
                            EventKind::Joined,
                            key,
                            pid,
                            m,
                            None,
                            Reason::Requested,
                        )])
                    }
                };
                model.groups.retain(|_, members| !members.is_empty());
                expected
            }
            Op::Leave { proc, key } => {
                let Some(p) = pick(&self.handles, proc) else {
                    return Ok(None);
                };
                let (pid, key) = (p.pid(), KEYS[key]);
                let got = p.leave(key);
                let position = model
                    .groups
                    .get(key)
                    .and_then(|members| members.iter().position(|(q, _)| *q == pid));
                match position {
                    Some(i) => {
                        prop_assert_eq!(got, Ok(()));
                        let members = model.groups.get_mut(key).unwrap();
                        let (_, m) = members.remove(i);
                        model.groups.retain(|_, members| !members.is_empty());
                        Some(vec![Model::event(
                            EventKind::Left,
                            key,
                            pid,
                            m,
                            None,
                            Reason::Requested,
                        )])
                    }
                    None => {
                        prop_assert_eq!(got, Err(RegistryError::NotInGroup { key: key.into() }));
                        None
                    }
                }
            }
            Op::Drop { proc } => {
                if self.handles.is_empty() {
                    return Ok(None);
                }
                let p = self.handles.remove(proc % self.handles.len());
                let pid = p.pid();
                drop(p);
                let events = model.exit(pid, ExitReason::Normal);
                (!events.is_empty()).then_some(events)
            }
            Op::Kill { proc } => {
                let Some(p) = pick(&self.handles, proc) else {
                    return Ok(None);
                };
                let pid = p.pid();
                let was_alive = model.alive.contains(&pid);
                prop_assert_eq!(self.node.kill(pid), was_alive);
                prop_assert!(!p.is_alive());
                prop_assert!(p.exit_reason().is_some());
                let events = model.exit(pid, ExitReason::Killed);
                (!events.is_empty()).then_some(events)
            }
        };
        Ok(expected)
    }

    /// Compares what the subscription received for the last step with the model.
    fn check_events(&mut self, expected: Option<Vec<Event>>) -> Result<(), TestCaseError> {
        let got = match queued_or_end(&mut self.events) {
            None => None,
            Some(Some(Delivery::Events(events))) => Some(events),
            Some(other) => {
                return Err(TestCaseError::fail(format!(
                    "unexpected delivery {other:?}"
                )));
            }
        };
        prop_assert_eq!(got.map(sorted_events), expected.map(sorted_events));
        prop_assert_eq!(queued_or_end(&mut self.events), None, "one batch per step");
        Ok(())
    }

    /// Compares every query with the model.
    fn check_queries(&self) -> Result<(), TestCaseError> {
        let (node, model) = (&self.node, &self.model);
        for key in KEYS {
            let want = model
                .names
                .get(key)
                .map(|&(pid, m, at, token)| Registration {
                    pid,
                    meta: meta(m),
                    registered_at: at,
                    token,
                });
            prop_assert_eq!(
                node.default_scope().whereis(key),
                want.as_ref().map(|r| r.pid)
            );
            prop_assert_eq!(node.default_scope().lookup(key), want, "lookup({})", key);

            let members = node.default_scope().members(key);
            let got: Vec<_> = members
                .iter()
                .map(|m| (m.pid(), m.meta().clone()))
                .collect();
            let want = model.members_of(key);
            prop_assert_eq!(node.default_scope().member_count(key), want.len());
            prop_assert_eq!(node.default_scope().local_member_count(key), want.len());
            let local: Vec<_> = node
                .default_scope()
                .local_members(key)
                .iter()
                .map(|m| (m.pid(), m.meta().clone()))
                .collect();
            prop_assert_eq!(&local, &want);
            prop_assert_eq!(got, want, "members({})", key);

            let mut targets: BTreeSet<Pid> =
                model.members_of(key).into_iter().map(|(p, _)| p).collect();
            targets.extend(model.names.get(key).map(|n| n.0));
            prop_assert_eq!(
                node.default_scope().dispatch(key, &()),
                Ok(Dispatched {
                    local: targets.len(),
                    mailbox_full: 0,
                    remote_nodes: 0,
                    remote_too_large: 0,
                    remote_unreachable: 0,
                }),
                "dispatch({})",
                key
            );
        }

        let all: Vec<_> = node
            .default_scope()
            .names("", usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(k, r)| (k.to_string(), r.pid, r.meta))
            .collect();
        prop_assert_eq!(all, model.names_under(""));
        for prefix in PREFIXES {
            let want = model.names_under(prefix);
            let want_members = model.members_of(prefix);
            for limit in LIMITS {
                let got: Vec<_> = node
                    .default_scope()
                    .names(prefix, limit)
                    .unwrap()
                    .into_iter()
                    .map(|(k, r)| (k.to_string(), r.pid, r.meta))
                    .collect();
                prop_assert_eq!(
                    &got[..],
                    &want[..want.len().min(limit)],
                    "registered({}, {})",
                    prefix,
                    limit
                );
                let got: Vec<_> = node
                    .default_scope()
                    .members_limited(prefix, limit)
                    .iter()
                    .map(|m| (m.pid(), m.meta().clone()))
                    .collect();
                prop_assert_eq!(
                    &got[..],
                    &want_members[..want_members.len().min(limit)],
                    "members_limited({}, {})",
                    prefix,
                    limit
                );
            }
            let got: Vec<_> = node
                .default_scope()
                .members(prefix)
                .iter()
                .map(|m| (m.pid(), m.meta().clone()))
                .collect();
            prop_assert_eq!(&got, &want_members, "members({})", prefix);
            prop_assert_eq!(
                node.default_scope().member_count(prefix),
                want_members.len()
            );
            prop_assert_eq!(
                node.default_scope().local_member_count(prefix),
                want_members.len()
            );
            let groups: Vec<_> = model
                .groups
                .keys()
                .filter(|k| k.starts_with(prefix))
                .collect();
            let got = node.default_scope().groups(prefix, usize::MAX).unwrap();
            prop_assert_eq!(
                got.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                groups.iter().map(|k| **k).collect::<Vec<_>>()
            );

            for table in [Table::Names, Table::Groups] {
                let want = match table {
                    Table::Names => model.name_entries_under(prefix),
                    Table::Groups => model.memberships_under(prefix),
                };
                prop_assert_eq!(
                    node.default_scope()
                        .select(table, Some(prefix), |_| true)
                        .unwrap(),
                    want.clone()
                );
                let even: Vec<_> = want.iter().filter(|e| even_meta(e)).cloned().collect();
                prop_assert_eq!(
                    node.default_scope()
                        .select(table, Some(prefix), even_meta)
                        .unwrap(),
                    even.clone()
                );
                prop_assert_eq!(
                    node.default_scope()
                        .count_match(table, Some(prefix), even_meta)
                        .unwrap(),
                    even.len()
                );
            }
        }
        let groups: Vec<_> = node.default_scope().groups("", usize::MAX).unwrap();
        prop_assert_eq!(
            groups.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            model.groups.keys().copied().collect::<Vec<_>>()
        );
        for table in [Table::Names, Table::Groups] {
            let want = match table {
                Table::Names => model.name_entries_under(""),
                Table::Groups => model.memberships_under(""),
            };
            let got = sorted_entries(node.default_scope().select(table, None, |_| true).unwrap());
            prop_assert_eq!(&got, &sorted_entries(want.clone()));
            for pid in &self.pids {
                let mine: Vec<_> = want.iter().filter(|e| e.pid == *pid).cloned().collect();
                let got = sorted_entries(
                    node.default_scope()
                        .select(table, None, |e| e.pid == *pid)
                        .unwrap(),
                );
                prop_assert_eq!(&got, &sorted_entries(mine.clone()));
                prop_assert_eq!(
                    node.default_scope()
                        .count_match(table, None, |e| e.pid == *pid)
                        .unwrap(),
                    mine.len()
                );
            }
        }

        let memberships: usize = model.groups.values().map(Vec::len).sum();
        prop_assert_eq!(node.default_scope().name_count(), model.names.len());
        prop_assert_eq!(node.default_scope().local_name_count(), model.names.len());
        prop_assert_eq!(node.default_scope().membership_count(), memberships);
        prop_assert_eq!(node.process_count(), model.alive.len());
        for pid in &self.pids {
            prop_assert_eq!(node.is_alive(*pid), model.alive.contains(pid));
            let names: Vec<_> = model
                .names
                .iter()
                .filter(|(_, n)| n.0 == *pid)
                .map(|(k, _)| *k)
                .collect();
            let got = node.default_scope().names_of(*pid);
            prop_assert_eq!(
                got.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                names,
                "names_of({})",
                pid
            );
            let keys: Vec<_> = model
                .groups
                .iter()
                .filter(|(_, members)| members.iter().any(|(p, _)| p == pid))
                .map(|(k, _)| *k)
                .collect();
            let got = node.default_scope().groups_of(*pid);
            prop_assert_eq!(
                got.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                keys,
                "keys_of({})",
                pid
            );
        }
        Ok(())
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut harness = Harness::new();
    for _ in 0..2 {
        harness.step(&Op::NewProcess)?;
    }
    for (i, op) in ops.iter().enumerate() {
        let expected = harness
            .step(op)
            .map_err(|e| TestCaseError::fail(format!("step {i} {op:?}: {e}")))?;
        harness
            .check_events(expected)
            .map_err(|e| TestCaseError::fail(format!("events after step {i} {op:?}: {e}")))?;
        harness
            .check_queries()
            .map_err(|e| TestCaseError::fail(format!("queries after step {i} {op:?}: {e}")))?;
    }
    // Dropping every handle empties the node, with the removals of the live ones.
    while !harness.handles.is_empty() {
        let expected = harness.step(&Op::Drop { proc: 0 })?;
        harness.check_events(expected)?;
    }
    harness.check_queries()?;
    prop_assert_eq!(harness.node.default_scope().name_count(), 0);
    prop_assert_eq!(harness.node.default_scope().membership_count(), 0);
    Ok(())
}

#[test]
fn random_operations_agree_with_a_sequential_model() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| run(&ops))
        .unwrap();
}
