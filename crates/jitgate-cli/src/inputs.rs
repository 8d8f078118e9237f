//! Which policy set a command works on: a directory, files named one by one, or a jitgate
//! configuration file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jitgate::cedar::{CedarPolicy, CedarPolicyBuilder, JsonEntitiesFile};

/// The policy set, named by a directory, by files, or by a configuration file.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PolicyArgs {
    /// A directory holding one schema (`*.cedarschema`), the policies (`*.cedar`), and
    /// optionally the entities (`entities.json`) and template links (`*.links.json`).
    pub dir: Option<PathBuf>,
    /// The Cedar schema file (instead of a directory's).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// A policy file, or a directory of `*.cedar` files (repeatable).
    #[arg(long)]
    pub policies: Vec<PathBuf>,
    /// A Cedar entities JSON file.
    #[arg(long)]
    pub entities: Option<PathBuf>,
    /// A template-link file, in the Cedar CLI's JSON form (repeatable).
    #[arg(long)]
    pub links: Vec<PathBuf>,
    /// The entity types that request, review and hold grants (default: the principal types of
    /// the schema's actions).
    #[arg(long = "principal-type")]
    pub principal_types: Vec<String>,
    /// A jitgate configuration file: its `[policy]` and `[entities]` name the files.
    #[arg(long, conflicts_with_all = ["dir", "schema", "policies", "entities", "links"])]
    pub config: Option<PathBuf>,
}

impl PolicyArgs {
    /// The directory the command looks in for more files (test cases), if one was named.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The entities file the policy set reads, if any.
    pub fn entities_path(&self) -> Option<PathBuf> {
        if let Some(config) = &self.config {
            let config = jitgate::config::Config::load(config).ok()?;
            return config.entities.file.as_ref().map(|f| f.relative());
        }
        self.entities.clone().or_else(|| {
            self.dir
                .as_ref()
                .map(|d| d.join("entities.json"))
                .filter(|p| p.is_file())
        })
    }

    /// What to build.
    ///
    /// # Errors
    /// What is missing or unreadable, for exit code 2.
    pub fn recipe(&self) -> Result<CedarPolicyBuilder, String> {
        if let Some(config) = &self.config {
            let config = jitgate::config::Config::load(config).map_err(|e| e.to_string())?;
            return Ok(config.recipe());
        }
        let mut recipe = CedarPolicy::builder();
        let mut schema = self.schema.clone();
        let mut entities = self.entities.clone();
        let mut links = self.links.clone();
        let mut policies = self.policies.clone();
        if let Some(dir) = &self.dir {
            let listed =
                std::fs::read_dir(dir).map_err(|e| format!("cannot read the directory {}: {e}", dir.display()))?;
            let mut files: Vec<PathBuf> = listed.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            let named = |suffix: &'static str| files.iter().filter(move |f| f.to_string_lossy().ends_with(suffix));
            if schema.is_none() {
                let found: Vec<&PathBuf> = named(".cedarschema").collect();
                schema = match found.as_slice() {
                    [one] => Some((*one).clone()),
                    [] => {
                        return Err(format!(
                            "no *.cedarschema file in {}: name one with --schema",
                            dir.display()
                        ))
                    }
                    many => {
                        return Err(format!(
                            "{} schema files in {}: name one with --schema",
                            many.len(),
                            dir.display()
                        ))
                    }
                };
            }
            if entities.is_none() {
                entities = Some(dir.join("entities.json")).filter(|p| p.is_file());
            }
            links.extend(named(".links.json").cloned());
            if policies.is_empty() {
                policies.push(dir.clone());
            }
        }
        let Some(schema) = schema else {
            return Err("name a policy directory, or --schema and --policies, or --config".into());
        };
        if policies.is_empty() {
            return Err("no policies named: give a directory or --policies".into());
        }
        recipe = recipe.schema_file(schema);
        for p in policies {
            recipe = if p.is_dir() {
                recipe.policy_dir(p)
            } else {
                recipe.policy_file(p)
            };
        }
        for l in links {
            recipe = recipe.template_links_file(l);
        }
        if let Some(e) = entities {
            recipe = recipe.entities(Arc::new(JsonEntitiesFile::new(e)));
        }
        if !self.principal_types.is_empty() {
            recipe = recipe.principal_types(&self.principal_types);
        }
        Ok(recipe.entities_never_expire())
    }
}
