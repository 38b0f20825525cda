use kaskad_core::config::TrainOptions;
use serde::{Deserialize, Serialize};

/// A model family with its hyperparameters, as recorded with every version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "lowercase")]
pub enum Hyperparams {
    /// L2-penalized logistic regression; `c` is the inverse penalty strength.
    Lr { c: f64 },
    /// CART with Gini impurity.
    Tree {
        max_depth: usize,
        min_samples_leaf: usize,
    },
    /// k nearest neighbours over at most `max_rows` training rows.
    Knn { k: usize, max_rows: usize },
    /// Gradient-boosted trees; `n_trees` is the most early stopping allows.
    Gbdt {
        n_trees: usize,
        learning_rate: f64,
        max_leaves: usize,
        min_samples_leaf: usize,
    },
    /// Multilayer perceptron with ReLU layers of the `hidden` sizes, Adam at
    /// `learning_rate`, L2 penalty `alpha`, early stopping within `max_epochs`.
    Mlp {
        hidden: Vec<usize>,
        learning_rate: f64,
        alpha: f64,
        max_epochs: usize,
    },
}

impl Hyperparams {
    /// The family name used in the configuration: `lr`, `tree`, `knn`, `gbdt`, `mlp`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Hyperparams::Lr { .. } => "lr",
            Hyperparams::Tree { .. } => "tree",
            Hyperparams::Knn { .. } => "knn",
            Hyperparams::Gbdt { .. } => "gbdt",
            Hyperparams::Mlp { .. } => "mlp",
        }
    }
}

/// Every combination the configuration asks to search, family by family in
/// the configured order.
pub fn grid(options: &TrainOptions) -> Vec<Hyperparams> {
    let mut grid = Vec::new();
    for algorithm in &options.algorithms {
        match algorithm.as_str() {
            "lr" => grid.extend(options.lr_c.iter().map(|&c| Hyperparams::Lr { c })),
            "tree" => {
                for &max_depth in &options.tree_max_depth {
                    for &min_samples_leaf in &options.tree_min_samples_leaf {
                        grid.push(Hyperparams::Tree {
                            max_depth,
                            min_samples_leaf,
                        });
                    }
                }
            }
            "knn" => grid.extend(options.knn_k.iter().map(|&k| Hyperparams::Knn {
                k,
                max_rows: options.knn_max_rows,
            })),
            "gbdt" => {
                for &n_trees in &options.gbdt_trees {
                    for &learning_rate in &options.gbdt_learning_rate {
                        for &max_leaves in &options.gbdt_max_leaves {
                            grid.push(Hyperparams::Gbdt {
                                n_trees,
                                learning_rate,
                                max_leaves,
                                min_samples_leaf: options.gbdt_min_samples_leaf,
                            });
                        }
                    }
                }
            }
            "mlp" => grid.extend(options.mlp_learning_rate.iter().map(|&learning_rate| {
                Hyperparams::Mlp {
                    hidden: options.mlp_hidden.clone(),
                    learning_rate,
                    alpha: options.mlp_alpha,
                    max_epochs: options.mlp_max_epochs,
                }
            })),
            // `Options::check` rejects unknown names before training starts.
            _ => {}
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_covers_every_family() {
        let grid = grid(&TrainOptions::default());
        assert_eq!(grid.len(), 3 + 3 * 2 + 2);
        assert_eq!(grid[0].algorithm(), "lr");
        assert_eq!(grid.last().unwrap().algorithm(), "knn");
        let json = serde_json::to_value(&grid[0]).unwrap();
        assert_eq!(json["algorithm"], "lr");
    }

    #[test]
    fn gbdt_grid_crosses_its_lists() {
        let options = TrainOptions {
            algorithms: vec!["gbdt".into()],
            ..TrainOptions::default()
        };
        let grid = grid(&options);
        assert_eq!(grid.len(), 2 * 2);
        assert!(grid.contains(&Hyperparams::Gbdt {
            n_trees: 200,
            learning_rate: 0.05,
            max_leaves: 31,
            min_samples_leaf: 20,
        }));
        let json = serde_json::to_value(&grid[0]).unwrap();
        assert_eq!(json["algorithm"], "gbdt");
    }
}
