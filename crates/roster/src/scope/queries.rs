//! Queries: entries selected or counted by a caller's predicate, raw or with their meta
//! decoded. Predicates see, and selections return, the meta as the scope's
//! `extract_meta` transform makes it (see `NodeBuilder::extract_meta`).

use serde::de::DeserializeOwned;

use super::Scope;
use crate::entry::{Entry, Table};
use crate::key::{Key, KeyError};
use crate::pid::Pid;

/// What [`Scope::select_as`] found: the entries whose meta decoded as `T` and matched,
/// and how many entries it skipped because their meta did not decode as `T`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::Table;
/// let node = roster::Node::builder().start().unwrap();
/// let (a, b) = (node.new_process(), node.new_process());
/// a.register("user/1", &30u8).unwrap();
/// b.register("user/2", &"not a number").unwrap();
/// let found = node.default_scope().select_as::<u8, _>(Table::Names, Some("user/"), 10, |_, age| *age > 18).unwrap();
/// assert_eq!((found.items.len(), found.undecodable), (1, 1));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected<T> {
    /// Matching entries, in key order under a prefix (table order without one).
    pub items: Vec<Decoded<T>>,
    /// Entries visited whose meta is not a `T`: skipped, never given to the predicate.
    pub undecodable: usize,
}

/// An entry whose meta was decoded as `T` (an item of [`Selected`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::Table;
/// let node = roster::Node::builder().start().unwrap();
/// let p = node.new_process();
/// p.register("user/1", &7u32).unwrap();
/// let found = node.default_scope().select_as::<u32, _>(Table::Names, None, 1, |_, _| true).unwrap();
/// assert_eq!((found.items[0].pid, found.items[0].meta), (p.pid(), 7));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<T> {
    /// The name or group key.
    pub key: Key,
    /// The owning or member process.
    pub pid: Pid,
    /// The decoded meta.
    pub meta: T,
}

/// What [`Scope::count_match_as`] counted.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::Table;
/// let node = roster::Node::builder().start().unwrap();
/// let p = node.new_process();
/// p.join("room/1", &"admin").unwrap();
/// let counted = node.default_scope().count_match_as::<String, _>(Table::Groups, None, |_, role| role == "admin").unwrap();
/// assert_eq!((counted.matched, counted.undecodable), (1, 0));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counted {
    /// Entries whose meta decoded as `T` and matched.
    pub matched: usize,
    /// Entries whose meta is not a `T`: skipped, never given to the predicate.
    pub undecodable: usize,
}

impl Scope {
    /// Entries of `table` for which `predicate(entry)` holds, under `prefix` if given.
    /// With an `extract_meta` transform (see [`crate::NodeBuilder::extract_meta`]), the
    /// predicate sees, and the result holds, the transformed meta (the transform runs once
    /// per entry visited); so do those of [`Scope::count_match`], [`Scope::select_as`] and
    /// [`Scope::count_match_as`].
    ///
    /// With a prefix the cost is proportional to the entries under it, not the table;
    /// without one the whole table is scanned. The answer to Elixir's `Registry.select`.
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` does not end with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::Table;
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.new_process(), node.new_process());
    /// a.register("user/1", &20u8).unwrap();
    /// b.register("user/2", &40u8).unwrap();
    /// let old = node.default_scope().select(Table::Names, Some("user/"), |e| e.meta.decode::<u8>().unwrap() > 30).unwrap();
    /// assert_eq!(old.len(), 1);
    /// assert_eq!(old[0].pid, b.pid());
    /// # }
    /// ```
    pub fn select(
        &self,
        table: Table,
        prefix: Option<&str>,
        mut predicate: impl FnMut(&Entry) -> bool,
    ) -> Result<Vec<Entry>, KeyError> {
        let mut found = Vec::new();
        self.visit(table, prefix, |entry| {
            if predicate(&entry) {
                found.push(entry);
            }
            true
        })?;
        Ok(found)
    }

    /// Number of entries of `table` for which `predicate(entry)` holds, under `prefix` if
    /// given (Elixir's `Registry.count_match`).
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` does not end with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::Table;
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("room/1", &"admin").unwrap();
    /// p.join("room/2", &"guest").unwrap();
    /// let admins = node.default_scope().count_match(Table::Groups, Some("room/"), |e| e.meta.decode::<String>().unwrap() == "admin");
    /// assert_eq!(admins.unwrap(), 1);
    /// # }
    /// ```
    pub fn count_match(
        &self,
        table: Table,
        prefix: Option<&str>,
        mut predicate: impl FnMut(&Entry) -> bool,
    ) -> Result<usize, KeyError> {
        let mut count = 0;
        self.visit(table, prefix, |entry| {
            count += usize::from(predicate(&entry));
            true
        })?;
        Ok(count)
    }

    /// Like [`Scope::select`], with each entry's meta decoded as `T` once, before the
    /// predicate sees it; at most `limit` items (the scan stops there). Entries whose meta
    /// is not a `T` are skipped and counted in [`Selected::undecodable`] (those visited
    /// before the scan stopped).
    ///
    /// A predicate that panics unwinds out of this call and leaves nothing behind: the
    /// scan holds no lock, so the scope and its readers and writers are unaffected (the
    /// same holds for [`Scope::select`] and [`Scope::count_match`]).
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` does not end with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::Table;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Session { region: String }
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.new_process(), node.new_process());
    /// a.register("session/1", &Session { region: "eu".into() }).unwrap();
    /// b.register("session/2", &Session { region: "us".into() }).unwrap();
    /// let eu = node
    ///     .default_scope()
    ///     .select_as::<Session, _>(Table::Names, Some("session/"), 100, |_, s| s.region == "eu")
    ///     .unwrap();
    /// assert_eq!(eu.items.len(), 1);
    /// assert_eq!(eu.items[0].key, "session/1");
    /// # }
    /// ```
    pub fn select_as<T, F>(
        &self,
        table: Table,
        prefix: Option<&str>,
        limit: usize,
        mut predicate: F,
    ) -> Result<Selected<T>, KeyError>
    where
        T: DeserializeOwned,
        F: FnMut(&Key, &T) -> bool,
    {
        let mut selected = Selected {
            items: Vec::new(),
            undecodable: 0,
        };
        self.visit(table, prefix, |entry| {
            if selected.items.len() >= limit {
                return false;
            }
            match entry.meta.decode::<T>() {
                Ok(meta) if predicate(&entry.key, &meta) => selected.items.push(Decoded {
                    key: entry.key,
                    pid: entry.pid,
                    meta,
                }),
                Ok(_) => {}
                Err(_) => selected.undecodable += 1,
            }
            true
        })?;
        Ok(selected)
    }

    /// Like [`Scope::count_match`], with each entry's meta decoded as `T` once, before the
    /// predicate sees it; entries whose meta is not a `T` are counted apart. A panicking
    /// predicate leaves nothing behind (see [`Scope::select_as`]).
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` does not end with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::Table;
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("room/1", &3u8).unwrap();
    /// p.join("room/2", &9u8).unwrap();
    /// p.join("room/3", &"three").unwrap();
    /// let big = node.default_scope().count_match_as::<u8, _>(Table::Groups, Some("room/"), |_, n| *n > 5).unwrap();
    /// assert_eq!((big.matched, big.undecodable), (1, 1));
    /// # }
    /// ```
    pub fn count_match_as<T, F>(
        &self,
        table: Table,
        prefix: Option<&str>,
        mut predicate: F,
    ) -> Result<Counted, KeyError>
    where
        T: DeserializeOwned,
        F: FnMut(&Key, &T) -> bool,
    {
        let mut counted = Counted::default();
        self.visit(table, prefix, |entry| {
            match entry.meta.decode::<T>() {
                Ok(meta) => counted.matched += usize::from(predicate(&entry.key, &meta)),
                Err(_) => counted.undecodable += 1,
            }
            true
        })?;
        Ok(counted)
    }

    fn visit(
        &self,
        table: Table,
        prefix: Option<&str>,
        mut visit: impl FnMut(Entry) -> bool,
    ) -> Result<(), KeyError> {
        if let Some(prefix) = prefix {
            self.check_prefix(prefix)?;
        }
        // `""` selects every key, as in `registered` and `groups`.
        let prefix = prefix.filter(|p| !p.is_empty());
        match (table, self.extractor()) {
            (Table::Names, None) => self.state.visit_names(prefix, visit),
            (Table::Groups, None) => self.state.visit_members(prefix, visit),
            (Table::Names, Some(extract)) => self
                .state
                .visit_names(prefix, |e| visit(self.extracted_entry(&extract, e))),
            (Table::Groups, Some(extract)) => self
                .state
                .visit_members(prefix, |e| visit(self.extracted_entry(&extract, e))),
        }
        Ok(())
    }
}
