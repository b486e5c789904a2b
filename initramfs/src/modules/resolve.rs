//! The load order of a set of modules: a depth-first walk that emits each
//! module after everything it needs, as modprobe would load them.

use std::collections::HashMap;

use super::{Lookup, Module, ModuleError, ModuleTree};

/// An alias's matches beyond the first are taken when each costs at most
/// this much of the image (its file, and no module that is not in the image
/// already): crc32c_intel (29 KiB) next to crc32c_generic, not a second
/// filesystem. Every MiB of the image counts in a 72–96 MiB reservation.
const CHEAP_MATCH_BYTES: u64 = 64 << 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Visiting,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// Named by the user or by a target's filesystem: it must exist.
    Requested,
    /// A `depends=` or `modules.dep` entry: a module name that must exist.
    Depends,
    /// A `pre:` softdep, or an alias match beyond the first: taken when
    /// the tree has it.
    Softdep,
}

pub(super) struct Resolver<'a> {
    tree: &'a ModuleTree,
    states: HashMap<String, State>,
    stack: Vec<String>,
    order: Vec<Module>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(tree: &'a ModuleTree) -> Resolver<'a> {
        Resolver {
            tree,
            states: HashMap::new(),
            stack: Vec::new(),
            order: Vec::new(),
        }
    }

    pub(super) fn request(&mut self, name: &str) -> Result<(), ModuleError> {
        self.visit(name, Edge::Requested)
    }

    pub(super) fn into_order(self) -> Vec<Module> {
        self.order
    }

    fn visit(&mut self, name: &str, edge: Edge) -> Result<(), ModuleError> {
        match self.states.get(name) {
            Some(State::Done) => return Ok(()),
            Some(State::Visiting) if edge == Edge::Softdep => {
                // modprobe also breaks softdep loops: the module is already
                // on its way in.
                log::debug!("softdep loop through `{name}` ignored");
                return Ok(());
            }
            Some(State::Visiting) => {
                let start = self.stack.iter().position(|n| n == name).unwrap_or(0);
                let mut chain = self.stack[start..].to_vec();
                chain.push(name.to_owned());
                return Err(ModuleError::Cycle { chain });
            }
            None => {}
        }
        if self.tree.builtin.contains(name) {
            self.states.insert(name.to_owned(), State::Done);
            return Ok(());
        }
        let Some(relative) = self.tree.files.get(name) else {
            return self.visit_alias(name, edge);
        };
        self.states.insert(name.to_owned(), State::Visiting);
        self.stack.push(name.to_owned());
        let loaded = self.tree.load(name, relative)?;
        // As modprobe does, `pre:` softdeps go in before the module's own
        // dependencies.
        for dep in &loaded.softdeps {
            self.visit(dep, Edge::Softdep)?;
        }
        for dep in &loaded.depends {
            self.visit(dep, Edge::Depends)?;
        }
        self.stack.pop();
        self.states.insert(name.to_owned(), State::Done);
        self.order.push(loaded.module);
        Ok(())
    }

    /// A name that is neither a module file nor built in: softdeps and
    /// users name aliases (`crypto-crc32c`, `crc32c`), which modprobe
    /// resolves to every module that provides them.
    fn visit_alias(&mut self, name: &str, edge: Edge) -> Result<(), ModuleError> {
        let not_found = || ModuleError::NotFound {
            name: name.to_owned(),
            needed_by: self.stack.last().cloned(),
            modules_dir: self.tree.dir.clone(),
        };
        if edge == Edge::Depends {
            // Dependencies are module names, never aliases.
            return Err(not_found());
        }
        match self.tree.lookup(name)? {
            Lookup::Builtin(module) => {
                log::debug!("`{name}` is provided by the built-in `{module}`");
                Ok(())
            }
            Lookup::Alias(matches) => {
                let (first, others) = matches
                    .split_first()
                    .expect("an alias lookup has at least one match");
                log::debug!("`{name}` is an alias of {}", matches.join(", "));
                self.visit(first, edge)?;
                for other in others {
                    if self.is_cheap(other)? {
                        self.visit(other, Edge::Softdep)?;
                    } else {
                        log::debug!("`{other}` also provides `{name}` but would cost too much");
                    }
                }
                Ok(())
            }
            Lookup::File(_) | Lookup::Missing if edge == Edge::Softdep => {
                // Softdeps may name optional helpers this kernel lacks.
                log::debug!("softdep `{name}` is not a module of the tree, skipped");
                Ok(())
            }
            Lookup::File(_) | Lookup::Missing => Err(not_found()),
        }
    }

    /// Whether a further match of an alias is small and brings no other
    /// module into the image.
    fn is_cheap(&self, name: &str) -> Result<bool, ModuleError> {
        if self.states.contains_key(name) {
            return Ok(true);
        }
        let (Some(size), Some(relative)) = (self.tree.file_size(name), self.tree.files.get(name))
        else {
            return Ok(false);
        };
        if size > CHEAP_MATCH_BYTES {
            return Ok(false);
        }
        let loaded = self.tree.load(name, relative)?;
        Ok(loaded.depends.iter().all(|dep| {
            self.tree.builtin.contains(dep) || self.states.get(dep) == Some(&State::Done)
        }))
    }
}
