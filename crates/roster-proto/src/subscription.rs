//! Subscriptions to lifecycle events: the subscriber registry (one per scope, and one
//! for node events) and the bounded queue of each subscriber. Generic over the event
//! type: registry [`Event`]s by key, node events by node name.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use arc_swap::ArcSwap;
use futures_core::Stream;
use smallvec::SmallVec;

use crate::vocab::entry::{Member, Registration};
use crate::vocab::event::Event;
use crate::vocab::key::{Key, Pattern, ancestor_prefixes};

/// An event a subscription can match: by its key (an entry's key, a node's name).
pub trait Keyed: Clone {
    /// What patterns match against.
    fn key(&self) -> &str;

    /// Whether only subscribers that opted in get it (node heartbeats).
    fn opt_in(&self) -> bool {
        false
    }
}

impl Keyed for Event {
    fn key(&self) -> &str {
        &self.key
    }
}

/// One item of a [`Subscription`]: a batch of events, or a notice of how many were
/// missed. Which changes share a batch is told in [`Subscription`]'s "Batches" section.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery<E = Event> {
    /// Events, in order.
    Events(Vec<E>),
    /// The subscriber fell behind and this many events were dropped for it.
    Lagged {
        /// Exact number of events dropped since the previous item.
        missed: u64,
    },
}

impl<E: Eq> Eq for Delivery<E> {}

impl<E> Delivery<E> {
    /// The events, or `None` for a [`Delivery::Lagged`] item.
    ///
    /// ```
    /// assert!(roster::Delivery::<roster::Event>::Lagged { missed: 1 }.into_events().is_none());
    /// ```
    pub fn into_events(self) -> Option<Vec<E>> {
        match self {
            Self::Events(events) => Some(events),
            Self::Lagged { .. } => None,
        }
    }
}

static NEXT_SUBSCRIBER: AtomicU64 = AtomicU64::new(1);

/// Queue slots kept allocated once a queue has drained: a burst may grow the queue to its
/// capacity, the memory goes back when it is empty again.
const RETAINED_SLOTS: usize = 1024;

/// The queue of one subscriber, shared between the writers and the [`Subscription`].
pub struct SubscriberQueue<E = Event> {
    id: u64,
    patterns: Vec<Pattern>,
    /// It gets the events that are only for those who opt in.
    opted_in: bool,
    capacity: usize,
    state: Mutex<QueueState<E>>,
}

/// One item waiting in a queue: what [`Delivery`] will hand out.
enum Queued<E> {
    /// A one-event batch (a local write), held without a `Vec`: a writer, which holds a
    /// shard lock, allocates nothing for it; the receiver wraps it when it takes it.
    One(E),
    /// A batch of several events.
    Many(Vec<E>),
    /// This many events were dropped since the previous item.
    Lagged(u64),
}

struct QueueState<E> {
    items: VecDeque<Queued<E>>,
    queued_events: usize,
    waker: Option<Waker>,
    closed: bool,
}

impl<E> Default for QueueState<E> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            queued_events: 0,
            waker: None,
            closed: false,
        }
    }
}

impl<E: Keyed> SubscriberQueue<E> {
    fn lock(&self) -> MutexGuard<'_, QueueState<E>> {
        // Every critical section leaves the state consistent, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a batch of `len` events (`item`), or counts it as missed if it does not
    /// fit, and wakes the receiver if it waits. Never waits.
    fn push(&self, len: usize, item: Queued<E>) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        if state.queued_events > 0 && state.queued_events + len > self.capacity {
            match state.items.back_mut() {
                Some(Queued::Lagged(missed)) => *missed += len as u64,
                _ => state.items.push_back(Queued::Lagged(len as u64)),
            }
        } else {
            state.queued_events += len;
            state.items.push_back(item);
        }
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Queues a final batch (if any) and ends the subscription.
    pub fn close_with(&self, events: Vec<E>) {
        let mut state = self.lock();
        if !events.is_empty() {
            // The final batch is always kept: it is bounded by the scope's size and the
            // subscriber needs it to know what it no longer sees.
            state.queued_events += events.len();
            state.items.push_back(Queued::Many(events));
        }
        state.closed = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Takes the next item. If there is none yet, the receiver is woken by the next push;
    /// but if `linger`, it is asked to be polled again first instead (a yield), so that
    /// a burst of writes on other tasks piles up and it takes many items per wake-up
    /// rather than one.
    fn poll_next(&self, cx: &mut Context<'_>, linger: bool) -> Poll<Option<Delivery<E>>> {
        let mut state = self.lock();
        if let Some(item) = state.items.pop_front() {
            if state.items.is_empty() && state.items.capacity() > RETAINED_SLOTS {
                state.items.shrink_to(RETAINED_SLOTS);
            }
            let delivery = match item {
                Queued::One(event) => {
                    state.queued_events -= 1;
                    drop(state);
                    Delivery::Events(vec![event])
                }
                Queued::Many(events) => {
                    state.queued_events -= events.len();
                    Delivery::Events(events)
                }
                Queued::Lagged(missed) => Delivery::Lagged { missed },
            };
            return Poll::Ready(Some(delivery));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        if linger {
            drop(state);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match &mut state.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Whether a change to `key` is for this subscriber.
    pub fn matches(&self, key: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(key))
    }
}

/// The subscribers of one scope, indexed by pattern so that matching a change costs
/// O(depth of the key), not O(subscribers). Replaced copy-on-write on (un)subscribe.
pub struct SubscriberTable<E = Event> {
    all: Vec<Arc<SubscriberQueue<E>>>,
    exact: HashMap<Key, Vec<Arc<SubscriberQueue<E>>>>,
    prefix: HashMap<Key, Vec<Arc<SubscriberQueue<E>>>>,
    /// Every subscription by id, including one with no pattern (which is in no list).
    queues: HashMap<u64, Arc<SubscriberQueue<E>>>,
}

impl<E> Default for SubscriberTable<E> {
    fn default() -> Self {
        Self {
            all: Vec::new(),
            exact: HashMap::new(),
            prefix: HashMap::new(),
            queues: HashMap::new(),
        }
    }
}

impl<E> Clone for SubscriberTable<E> {
    fn clone(&self) -> Self {
        Self {
            all: self.all.clone(),
            exact: self.exact.clone(),
            prefix: self.prefix.clone(),
            queues: self.queues.clone(),
        }
    }
}

impl<E: Keyed> SubscriberTable<E> {
    fn with(&self, queue: &Arc<SubscriberQueue<E>>) -> Self {
        let mut table = self.clone();
        for pattern in &queue.patterns {
            let list = match pattern {
                Pattern::All => &mut table.all,
                Pattern::Exact(k) => table.exact.entry(k.clone()).or_default(),
                Pattern::Prefix(p) => table.prefix.entry(p.clone()).or_default(),
            };
            if !list.iter().any(|q| q.id == queue.id) {
                list.push(queue.clone());
            }
        }
        table.queues.insert(queue.id, queue.clone());
        table
    }

    fn without(&self, id: u64) -> Self {
        let mut table = self.clone();
        table.all.retain(|q| q.id != id);
        for map in [&mut table.exact, &mut table.prefix] {
            map.retain(|_, list| {
                list.retain(|q| q.id != id);
                !list.is_empty()
            });
        }
        table.queues.remove(&id);
        table
    }

    /// Whether nobody is subscribed.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Calls `f` once for each subscriber matching `event`.
    fn for_each_match<'a>(&'a self, event: &E, mut f: impl FnMut(&'a Arc<SubscriberQueue<E>>)) {
        let key = event.key();
        let opt_in = event.opt_in();
        let mut seen = SeenIds::default();
        let mut visit = |q: &'a Arc<SubscriberQueue<E>>| {
            if (q.opted_in || !opt_in) && seen.insert(q.id) {
                f(q)
            }
        };
        self.all.iter().for_each(&mut visit);
        if let Some(list) = self.exact.get(key) {
            list.iter().for_each(&mut visit);
        }
        if !self.prefix.is_empty() {
            for prefix in ancestor_prefixes(key) {
                if let Some(list) = self.prefix.get(prefix) {
                    list.iter().for_each(&mut visit);
                }
            }
        }
    }

    /// All subscribers, each once.
    pub fn all_queues(&self) -> Vec<Arc<SubscriberQueue<E>>> {
        self.queues.values().cloned().collect()
    }
}

/// How many subscriber ids [`SeenIds`] holds before it allocates.
const INLINE_SEEN: usize = 4;

/// Subscriber ids already visited for one change; a linear set, since a change matches a
/// handful of subscribers. The first few live inline: matching a change allocates nothing.
#[derive(Default)]
struct SeenIds(SmallVec<[u64; INLINE_SEEN]>);

impl SeenIds {
    /// Adds `id`; false if it was there already.
    fn insert(&mut self, id: u64) -> bool {
        if self.0.contains(&id) {
            return false;
        }
        self.0.push(id);
        true
    }
}

/// The subscriber registry of one scope (or of node events).
pub struct Subscribers<E = Event> {
    table: ArcSwap<SubscriberTable<E>>,
}

impl<E> Default for Subscribers<E> {
    fn default() -> Self {
        Self {
            table: ArcSwap::default(),
        }
    }
}

impl<E: Keyed> Subscribers<E> {
    /// Adds a subscriber to changes matching `patterns`, with a queue of `capacity` events.
    pub fn add(&self, patterns: Vec<Pattern>, capacity: usize) -> Arc<SubscriberQueue<E>> {
        self.add_with(patterns, capacity, false)
    }

    /// [`Subscribers::add`], also getting the events only for those who opt in if
    /// `opted_in`.
    pub fn add_with(
        &self,
        patterns: Vec<Pattern>,
        capacity: usize,
        opted_in: bool,
    ) -> Arc<SubscriberQueue<E>> {
        let queue = Arc::new(SubscriberQueue {
            id: NEXT_SUBSCRIBER.fetch_add(1, Ordering::Relaxed),
            patterns,
            opted_in,
            capacity,
            state: Mutex::new(QueueState::default()),
        });
        self.table.rcu(|table| table.with(&queue));
        queue
    }

    /// Removes subscriber `id`.
    pub fn remove(&self, id: u64) {
        self.table.rcu(|table| {
            if table.queues.contains_key(&id) {
                Arc::new(table.without(id))
            } else {
                table.clone()
            }
        });
    }

    /// Whether nobody is subscribed.
    pub fn is_empty(&self) -> bool {
        self.table.load().is_empty()
    }

    /// Takes every subscriber out of the table (on scope disconnect).
    pub fn take_all(&self) -> Vec<Arc<SubscriberQueue<E>>> {
        self.table.swap(Arc::default()).all_queues()
    }

    /// Delivers one event to every matching subscriber as a one-event batch. The event
    /// is only built when someone subscribes to the scope (writes are hot; most scopes
    /// have no subscriber), and only copied for the second matching subscriber on.
    pub fn emit(&self, event: impl FnOnce() -> E) {
        let table = self.table.load();
        if table.queues.is_empty() {
            return;
        }
        let event = event();
        let mut last = None;
        table.for_each_match(&event, |q| {
            if let Some(previous) = last.replace(q) {
                previous.push(1, Queued::One(event.clone()));
            }
        });
        if let Some(queue) = last {
            queue.push(1, Queued::One(event));
        }
    }

    /// Delivers a bulk change: one batch per matching subscriber, events in order.
    pub fn emit_batch(&self, events: Vec<E>) {
        let table = self.table.load();
        if table.queues.is_empty() || events.is_empty() {
            return;
        }
        let mut batches: Vec<(Arc<SubscriberQueue<E>>, Vec<E>)> = Vec::new();
        for event in &events {
            table.for_each_match(event, |q| {
                match batches.iter_mut().find(|(b, _)| b.id == q.id) {
                    Some((_, batch)) => batch.push(event.clone()),
                    None => batches.push((q.clone(), vec![event.clone()])),
                }
            });
        }
        for (queue, batch) in batches {
            queue.push(batch.len(), Queued::Many(batch));
        }
    }
}

/// A stream of event batches for one scope.
///
/// A `Subscription` is a bounded stream of event batches for one scope. Events of one key
/// arrive in the order the changes were applied. A subscription whose patterns match a
/// change several times still gets the event once. To start from the entries that exist
/// already, with no gap and no duplicate between them and the events, use
/// `roster::Scope::watch` instead.
///
/// # Batches
///
/// A batch holds the events of the subscription's keys from one change, in order:
///
/// - **a local write** (`register`, `unregister`, `join`, `leave`, a meta update): one
///   event per batch. Registering a name whose previous owner has died but not been
///   cleaned up yet gives two one-event batches: its removal, then the registration;
/// - **a frame received from a peer** (live ops, one frame of a catch-up from the op log,
///   one chunk of a snapshot): one batch per frame, so a catch-up of many entries wakes a
///   subscriber once per frame, not once per entry. The last chunk of a snapshot carries the
///   removals the snapshot implies (reason [`crate::vocab::event::Reason::Resynced`]);
/// - **a process exiting** (dropped, killed, or ended by a lost conflict): it is invisible
///   to reads at once, then its entries are removed scope by scope, one batch per scope
///   with every entry it held there (reason [`crate::vocab::event::Reason::Exit`]);
/// - **a node lost**, restarted as a new incarnation, or leaving the scope: one batch with
///   all its entries in the scope;
/// - **this node disconnecting from the scope**: one final batch, then the end (see
///   "Closing").
///
/// A batch is queued or counted as missed whole (see "Lagging").
///
/// # Lagging
///
/// Each subscription holds at most `capacity` undelivered events (set with
/// `roster::NodeBuilder::subscription_capacity`); a batch larger than the capacity is only
/// accepted into an empty queue. Writers never wait for a subscriber: a batch that does not
/// fit is dropped and counted, and the subscriber's next item is
/// [`Delivery::Lagged`] with the exact number of events it missed. It stays subscribed and
/// receives what comes after; memory never grows without bound.
///
/// # Wake-ups
///
/// A waiting subscription is woken by the first change queued for it, not by every one.
/// Once it has taken an item, a poll that finds the queue empty yields once (it wakes its
/// own task and returns `Pending`) before it waits: during a burst of writes on other tasks
/// the subscriber then takes what piled up meanwhile in one go instead of being woken
/// once per write. Batches are the same either way.
///
/// # Closing
///
/// Dropping the subscription unsubscribes. When this node disconnects from the scope, the
/// subscription receives the final batch (every entry removed, reason
/// [`crate::vocab::event::Reason::ScopeDisconnected`]) and then ends (`recv` returns `None`).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::{Delivery, Node, Pattern};
///
/// let node = Node::builder().subscription_capacity(2).start().unwrap();
/// let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
/// let proc = node.new_process();
/// for i in 0..5 {
///     proc.register(&format!("k{i}"), &()).unwrap();
/// }
/// assert_eq!(events.recv().await.unwrap().into_events().unwrap().len(), 1);
/// assert_eq!(events.recv().await.unwrap().into_events().unwrap().len(), 1);
/// assert_eq!(events.recv().await, Some(Delivery::Lagged { missed: 3 }));
/// proc.register("k5", &()).unwrap();
/// assert_eq!(events.recv().await.unwrap().into_events().unwrap()[0].key, "k5");
/// # }
/// ```
///
/// Implements [`Stream`] with `Item = Delivery`; [`Subscription::recv`] is the same as
/// `StreamExt::next`.
///
/// The same type, `Subscription<NodeEvent>`, streams node events (see
/// `roster::Nodes::subscribe`): node events match patterns by node name.
pub struct Subscription<E: Keyed = Event> {
    queue: Arc<SubscriberQueue<E>>,
    /// The last poll returned an item: if the queue is empty now, more may be on the way
    /// (see [`SubscriberQueue::poll_next`]).
    linger: bool,
    /// The registry it leaves when dropped (gone once its scope is).
    registry: Weak<Subscribers<E>>,
}

impl<E: Keyed> Subscription<E> {
    /// A subscription reading `queue`, which leaves `registry` when dropped.
    pub(crate) fn new(queue: Arc<SubscriberQueue<E>>, registry: Weak<Subscribers<E>>) -> Self {
        Self {
            queue,
            linger: false,
            registry,
        }
    }

    /// Waits for the next item; `None` once the scope was disconnected and everything
    /// before was delivered.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an item is only taken from the queue when it is returned.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut events = node.default_scope().subscribe("room/1").unwrap();
    /// node.new_process().join("room/1", &()).unwrap();
    /// // the process was dropped at once: Joined, then Left
    /// let joined = events.recv().await.unwrap().into_events().unwrap();
    /// let left = events.recv().await.unwrap().into_events().unwrap();
    /// assert_eq!((joined[0].kind, left[0].kind), (roster::EventKind::Joined, roster::EventKind::Left));
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Option<Delivery<E>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    /// Takes the next item, yielding once before it waits if the last poll found one.
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery<E>>> {
        let poll = self.queue.poll_next(cx, self.linger);
        self.linger = matches!(poll, Poll::Ready(Some(_)));
        poll
    }

    /// Whether a change to `key` would be delivered to this subscription.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let events = node.default_scope().subscribe("user/").unwrap();
    /// assert!(events.matches("user/7") && !events.matches("room/7"));
    /// # }
    /// ```
    pub fn matches(&self, key: &str) -> bool {
        self.queue.matches(key)
    }
}

impl<E: Keyed> Stream for Subscription<E> {
    type Item = Delivery<E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery<E>>> {
        self.get_mut().poll_item(cx)
    }
}

impl<E: Keyed> Drop for Subscription<E> {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(self.queue.id);
        }
    }
}

/// A watch: the entries that matched its patterns at one instant, and a [`Subscription`]
/// to every change after that instant: the list-then-watch of etcd and Kubernetes.
///
/// Subscribing right after connecting races with what arrives meanwhile (the first sync
/// with the cluster, other writers): an entry written before the subscription is never an
/// event, and the caller cannot tell which it missed. A watch has no such gap. The copy of
/// the entries and the start of the subscription happen under the locks that every writer
/// (local writes, ops and snapshots received from peers, exits, purges) holds while it
/// changes an entry and delivers its event, so each change is either already in
/// `names`/`members` or arrives as an event in `events`: never both, never neither.
/// Applying the events in order to the initial entries gives the scope's state.
///
/// The initial entries are exactly what the scope holds at that instant: an entry of a
/// process that has just exited may be in them, its removal then follows as an event.
/// Later versions may add other kinds of entries (node records): the struct is
/// `#[non_exhaustive]`, so destructure it with `..`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::{EventKind, Node, Watch};
///
/// let node = Node::builder().start().unwrap();
/// let alice = node.new_process();
/// alice.register("user/alice", &"eu").unwrap();
/// alice.join("user/online", &()).unwrap();
///
/// let Watch { names, members, mut events, .. } = node.default_scope().watch("user/").unwrap();
/// assert_eq!(names.len(), 1);
/// assert_eq!((names[0].0.as_str(), names[0].1.pid), ("user/alice", alice.pid()));
/// assert_eq!(members[0].0, "user/online");
///
/// let bob = node.new_process();
/// bob.register("user/bob", &"us").unwrap();
/// let batch = events.recv().await.unwrap().into_events().unwrap();
/// assert_eq!((batch[0].kind, batch[0].key.as_str()), (EventKind::Registered, "user/bob"));
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Watch {
    /// The names that matched, in key order.
    pub names: Vec<(Key, Registration)>,
    /// The group memberships that matched, in key order, then join order within a group.
    pub members: Vec<(Key, Member)>,
    /// Every change after the initial entries, as a [`Subscription`] gives them.
    pub events: Subscription,
}

impl<E: Keyed> std::fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("patterns", &self.queue.patterns)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Change(&'static str);

    impl Keyed for Change {
        fn key(&self) -> &str {
            self.0
        }
    }

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A registry with one subscription to everything, polled with a counting waker.
    struct Subscribed {
        registry: Arc<Subscribers<Change>>,
        events: Subscription<Change>,
        wakes: Arc<Wakes>,
    }

    impl Subscribed {
        fn new() -> Self {
            let registry = Arc::new(Subscribers::default());
            let queue = registry.add(vec![Pattern::All], 16);
            let events = Subscription::new(queue, Arc::downgrade(&registry));
            Self {
                registry,
                events,
                wakes: Arc::default(),
            }
        }

        fn poll(&mut self) -> Poll<Option<Delivery<Change>>> {
            let waker = Waker::from(self.wakes.clone());
            Pin::new(&mut self.events).poll_next(&mut Context::from_waker(&waker))
        }

        fn write(&self, key: &'static str) {
            self.registry.emit(|| Change(key));
        }

        fn wakes(&self) -> usize {
            self.wakes.0.load(Ordering::Relaxed)
        }
    }

    fn one(key: &'static str) -> Poll<Option<Delivery<Change>>> {
        Poll::Ready(Some(Delivery::Events(vec![Change(key)])))
    }

    #[test]
    fn a_receiver_that_just_took_an_item_yields_once_before_it_waits() {
        let mut s = Subscribed::new();
        s.write("a");
        assert_eq!(s.poll(), one("a"));
        // Empty right after an item: it asks to be polled again rather than waiting.
        assert!(s.poll().is_pending());
        assert_eq!(s.wakes(), 1);
        // A write meanwhile is taken on that poll, with no wake-up of its own.
        s.write("b");
        assert_eq!(s.poll(), one("b"));
        assert!(s.poll().is_pending());
        assert_eq!(s.wakes(), 2);
        // Still empty after the yield: now it waits, and the next write wakes it.
        assert!(s.poll().is_pending());
        assert_eq!(s.wakes(), 2);
        s.write("c");
        assert_eq!(s.wakes(), 3);
    }

    #[test]
    fn a_waiting_receiver_is_woken_once_for_a_burst_and_gets_every_write_as_its_own_batch() {
        let mut s = Subscribed::new();
        assert!(s.poll().is_pending());
        for key in ["a", "b", "c"] {
            s.write(key);
        }
        assert_eq!(s.wakes(), 1);
        for key in ["a", "b", "c"] {
            assert_eq!(s.poll(), one(key));
        }
    }
}
