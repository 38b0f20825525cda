//! The standard (`ai.onnx`) operators that scikit-learn and LightGBM
//! exports use around their ONNX-ML operators.

use crate::GraphError;
use crate::attrs::Attrs;
use crate::proto::data_type;
use crate::tensor::{Data, Tensor, zip_broadcast};

#[derive(Debug, Clone, Copy)]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Unary {
    Relu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    Abs,
    Neg,
    Sqrt,
}

#[derive(Debug)]
pub(crate) enum StdOp {
    Identity,
    Cast(i32),
    Binary(Binary),
    Unary(Unary),
    Softmax(i64),
    MatMul,
    Gemm {
        alpha: f64,
        beta: f64,
        trans_a: bool,
        trans_b: bool,
    },
    Concat(i64),
    Reshape {
        allow_zero: bool,
    },
    Flatten(i64),
    /// Axes from the attribute (before opset 13), else from the second input.
    Squeeze(Option<Vec<i64>>),
    Unsqueeze(Option<Vec<i64>>),
    ArgMax {
        axis: i64,
        keep_dims: bool,
        last: bool,
    },
    Shape,
    Gather(i64),
}

pub(crate) const STANDARD: &[&str] = &[
    "Abs",
    "Add",
    "ArgMax",
    "Cast",
    "Concat",
    "Constant",
    "Div",
    "Exp",
    "Flatten",
    "Gather",
    "Gemm",
    "Identity",
    "Log",
    "MatMul",
    "Mul",
    "Neg",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Softmax",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tanh",
    "Unsqueeze",
];

/// The standard operator `a.node` asks for, at `opset`; `None` if kaskad
/// does not evaluate it.
pub(crate) fn compile(a: &Attrs<'_>, opset: i64) -> Result<Option<StdOp>, GraphError> {
    Ok(Some(match a.node.op_type.as_str() {
        "Identity" => StdOp::Identity,
        "Cast" => {
            let to = i32::try_from(a.int("to", 0)).unwrap_or(-1);
            let known = [
                data_type::FLOAT,
                data_type::DOUBLE,
                data_type::INT64,
                data_type::INT32,
                data_type::BOOL,
                data_type::STRING,
            ];
            if !known.contains(&to) {
                return Err(a.error(format!("casting to element type {to} is not supported")));
            }
            StdOp::Cast(to)
        }
        "Add" => StdOp::Binary(Binary::Add),
        "Sub" => StdOp::Binary(Binary::Sub),
        "Mul" => StdOp::Binary(Binary::Mul),
        "Div" => StdOp::Binary(Binary::Div),
        "Relu" => StdOp::Unary(Unary::Relu),
        "Sigmoid" => StdOp::Unary(Unary::Sigmoid),
        "Tanh" => StdOp::Unary(Unary::Tanh),
        "Exp" => StdOp::Unary(Unary::Exp),
        "Log" => StdOp::Unary(Unary::Log),
        "Abs" => StdOp::Unary(Unary::Abs),
        "Neg" => StdOp::Unary(Unary::Neg),
        "Sqrt" => StdOp::Unary(Unary::Sqrt),
        "Softmax" => {
            let axis = a.int("axis", if opset >= 13 { -1 } else { 1 });
            StdOp::Softmax(axis)
        }
        "MatMul" => StdOp::MatMul,
        "Gemm" => StdOp::Gemm {
            alpha: a.float("alpha", 1.0).into(),
            beta: a.float("beta", 1.0).into(),
            trans_a: a.int("transA", 0) != 0,
            trans_b: a.int("transB", 0) != 0,
        },
        "Concat" => StdOp::Concat(a.int("axis", 0)),
        "Reshape" => StdOp::Reshape {
            allow_zero: a.int("allowzero", 0) != 0,
        },
        "Flatten" => StdOp::Flatten(a.int("axis", 1)),
        "Squeeze" => StdOp::Squeeze(a.has("axes").then(|| a.ints("axes"))),
        "Unsqueeze" => StdOp::Unsqueeze(a.has("axes").then(|| a.ints("axes"))),
        "ArgMax" => StdOp::ArgMax {
            axis: a.int("axis", 0),
            keep_dims: a.int("keepdims", 1) != 0,
            last: a.int("select_last_index", 0) != 0,
        },
        "Shape" => StdOp::Shape,
        "Gather" => StdOp::Gather(a.int("axis", 0)),
        _ => return Ok(None),
    }))
}

fn axis(axis: i64, rank: usize) -> Result<usize, String> {
    let rank = rank as i64;
    let resolved = if axis < 0 { axis + rank } else { axis };
    if (0..rank.max(1)).contains(&resolved) {
        Ok(resolved as usize)
    } else {
        Err(format!("axis {axis} is outside a tensor of rank {rank}"))
    }
}

fn input<'t>(inputs: &[Option<&'t Tensor>], i: usize) -> Result<&'t Tensor, String> {
    inputs
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| format!("input {i} is missing"))
}

impl StdOp {
    pub fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
        let x = input(inputs, 0)?;
        Ok(vec![match self {
            StdOp::Identity => x.clone(),
            StdOp::Cast(to) => cast(x, *to)?,
            StdOp::Binary(op) => binary(*op, x, input(inputs, 1)?)?,
            StdOp::Unary(op) => unary(*op, x)?,
            StdOp::Softmax(a) => softmax(x, axis(*a, x.shape.len())?)?,
            StdOp::MatMul => gemm(x, input(inputs, 1)?, None, 1.0, 0.0, false, false)?,
            StdOp::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => gemm(
                x,
                input(inputs, 1)?,
                inputs.get(2).copied().flatten(),
                *alpha,
                *beta,
                *trans_a,
                *trans_b,
            )?,
            StdOp::Concat(a) => {
                let parts: Vec<&Tensor> = inputs.iter().copied().flatten().collect();
                concat(&parts, axis(*a, x.shape.len())?)?
            }
            StdOp::Reshape { allow_zero } => {
                let target = input(inputs, 1)?.ints()?;
                reshape(x, target, *allow_zero)?
            }
            StdOp::Flatten(a) => {
                let a = if *a == x.shape.len() as i64 {
                    x.shape.len()
                } else {
                    axis(*a, x.shape.len())?
                };
                let rows = x.shape[..a].iter().product();
                let cols = x.shape[a..].iter().product();
                Tensor::new(vec![rows, cols], x.data.clone())
            }
            StdOp::Squeeze(axes) => {
                let axes = match axes {
                    Some(axes) => Some(axes.clone()),
                    None => inputs
                        .get(1)
                        .copied()
                        .flatten()
                        .map(|t| t.ints().map(<[i64]>::to_vec))
                        .transpose()?,
                };
                let squeezed: Vec<usize> = match axes {
                    Some(axes) => axes
                        .iter()
                        .map(|&a| axis(a, x.shape.len()))
                        .collect::<Result<_, _>>()?,
                    None => (0..x.shape.len()).filter(|&i| x.shape[i] == 1).collect(),
                };
                let shape = x
                    .shape
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !squeezed.contains(i))
                    .map(|(_, &d)| d)
                    .collect();
                Tensor::new(shape, x.data.clone())
            }
            StdOp::Unsqueeze(axes) => {
                let axes = match axes {
                    Some(axes) => axes.clone(),
                    None => input(inputs, 1)?.ints()?.to_vec(),
                };
                let rank = x.shape.len() + axes.len();
                let mut inserted: Vec<usize> = axes
                    .iter()
                    .map(|&a| axis(a, rank))
                    .collect::<Result<_, _>>()?;
                inserted.sort_unstable();
                let mut shape = x.shape.clone();
                for a in inserted {
                    shape.insert(a, 1);
                }
                Tensor::new(shape, x.data.clone())
            }
            StdOp::ArgMax {
                axis: a,
                keep_dims,
                last,
            } => argmax(x, axis(*a, x.shape.len())?, *keep_dims, *last)?,
            StdOp::Shape => Tensor::new(
                vec![x.shape.len()],
                Data::Int64(x.shape.iter().map(|&d| d as i64).collect()),
            ),
            StdOp::Gather(a) => gather(x, input(inputs, 1)?, axis(*a, x.shape.len())?)?,
        }])
    }
}

fn cast(x: &Tensor, to: i32) -> Result<Tensor, String> {
    let parse = |s: &String| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| format!("cannot cast the string {s:?} to a number"))
    };
    let data = match to {
        data_type::FLOAT => match &x.data {
            Data::Str(v) => Data::Float(
                v.iter()
                    .map(|s| parse(s).map(|f| f as f32))
                    .collect::<Result<_, _>>()?,
            ),
            _ => Data::Float(x.to_f32()?),
        },
        data_type::DOUBLE => match &x.data {
            Data::Str(v) => Data::Double(v.iter().map(parse).collect::<Result<_, _>>()?),
            _ => Data::Double(x.to_f64()?),
        },
        data_type::INT64 | data_type::INT32 => match &x.data {
            Data::Int64(v) => Data::Int64(v.clone()),
            Data::Str(v) => Data::Int64(
                v.iter()
                    .map(|s| parse(s).map(|f| f as i64))
                    .collect::<Result<_, _>>()?,
            ),
            _ => Data::Int64(x.to_f64()?.into_iter().map(|f| f as i64).collect()),
        },
        data_type::BOOL => match &x.data {
            Data::Str(_) => return Err("cannot cast strings to bool".into()),
            _ => Data::Bool(x.to_f64()?.into_iter().map(|f| f != 0.0).collect()),
        },
        _ => match &x.data {
            Data::Str(v) => Data::Str(v.clone()),
            Data::Int64(v) => Data::Str(v.iter().map(i64::to_string).collect()),
            Data::Bool(v) => Data::Str(v.iter().map(|&b| u8::from(b).to_string()).collect()),
            _ => Data::Str(x.to_f64()?.iter().map(f64::to_string).collect()),
        },
    };
    Ok(Tensor::new(x.shape.clone(), data))
}

fn binary(op: Binary, a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    fn apply<T: Copy>(
        a: (&[T], &[usize]),
        b: (&[T], &[usize]),
        f: impl Fn(T, T) -> T,
        wrap: fn(Vec<T>) -> Data,
    ) -> Result<Tensor, String> {
        let (shape, values) = zip_broadcast(a, b, f)?;
        Ok(Tensor::new(shape, wrap(values)))
    }
    let (sa, sb) = (&a.shape[..], &b.shape[..]);
    match (&a.data, &b.data) {
        (Data::Float(x), Data::Float(y)) => apply(
            (x, sa),
            (y, sb),
            match op {
                Binary::Add => |p, q| p + q,
                Binary::Sub => |p, q| p - q,
                Binary::Mul => |p, q| p * q,
                Binary::Div => |p: f32, q: f32| p / q,
            },
            Data::Float,
        ),
        (Data::Double(x), Data::Double(y)) => apply(
            (x, sa),
            (y, sb),
            match op {
                Binary::Add => |p, q| p + q,
                Binary::Sub => |p, q| p - q,
                Binary::Mul => |p, q| p * q,
                Binary::Div => |p: f64, q: f64| p / q,
            },
            Data::Double,
        ),
        (Data::Int64(x), Data::Int64(y)) => {
            if matches!(op, Binary::Div) && y.contains(&0) {
                return Err("integer division by zero".into());
            }
            apply(
                (x, sa),
                (y, sb),
                match op {
                    Binary::Add => i64::wrapping_add,
                    Binary::Sub => i64::wrapping_sub,
                    Binary::Mul => i64::wrapping_mul,
                    Binary::Div => i64::wrapping_div,
                },
                Data::Int64,
            )
        }
        _ => Err(format!(
            "operands of types {} and {} (they must match)",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn unary(op: Unary, x: &Tensor) -> Result<Tensor, String> {
    let f = match op {
        // NaN passes through, as in onnxruntime.
        Unary::Relu => |v: f64| if v < 0.0 { 0.0 } else { v },
        Unary::Sigmoid => sigmoid,
        Unary::Tanh => f64::tanh,
        Unary::Exp => f64::exp,
        Unary::Log => f64::ln,
        Unary::Abs => f64::abs,
        Unary::Neg => |v: f64| -v,
        Unary::Sqrt => f64::sqrt,
    };
    map_real(x, f)
}

/// `f` over a float or double tensor, computed in double.
pub(crate) fn map_real(x: &Tensor, f: impl Fn(f64) -> f64) -> Result<Tensor, String> {
    let data = match &x.data {
        Data::Float(v) => Data::Float(v.iter().map(|&e| f(e.into()) as f32).collect()),
        Data::Double(v) => Data::Double(v.iter().map(|&e| f(e)).collect()),
        _ => return Err(format!("expected float or double, got {}", x.type_name())),
    };
    Ok(Tensor::new(x.shape.clone(), data))
}

/// The logistic function, without overflow for large |v|.
pub(crate) fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

fn softmax(x: &Tensor, a: usize) -> Result<Tensor, String> {
    if a + 1 != x.shape.len().max(1) {
        return Err("Softmax over an axis other than the last is not supported".into());
    }
    let (_, cols) = x.matrix();
    let mut values = x.to_f64()?;
    for row in values.chunks_mut(cols.max(1)) {
        softmax_in_place(row);
    }
    real_like(x, values)
}

pub(crate) fn softmax_in_place(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// `values` (computed in double) as a tensor of `like`'s shape and real type.
fn real_like(like: &Tensor, values: Vec<f64>) -> Result<Tensor, String> {
    let data = match like.data {
        Data::Double(_) => Data::Double(values),
        Data::Float(_) => Data::Float(values.into_iter().map(|v| v as f32).collect()),
        _ => {
            return Err(format!(
                "expected float or double, got {}",
                like.type_name()
            ));
        }
    };
    Ok(Tensor::new(like.shape.clone(), data))
}

/// The element types matrix products run in: the operands' own, as in
/// onnxruntime (float stays `f32`).
trait Real: Copy + Default + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> {
    fn of(v: f64) -> Self;
}

impl Real for f32 {
    fn of(v: f64) -> f32 {
        v as f32
    }
}

impl Real for f64 {
    fn of(v: f64) -> f64 {
        v
    }
}

/// `alpha * A' B' + beta * C`, A' and B' optionally transposed.
fn gemm(
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    alpha: f64,
    beta: f64,
    trans_a: bool,
    trans_b: bool,
) -> Result<Tensor, String> {
    if a.shape.len() != 2 || b.shape.len() != 2 {
        return Err(format!(
            "only 2-D operands are supported, got {:?} and {:?}",
            a.shape, b.shape
        ));
    }
    let (m, k) = if trans_a {
        (a.shape[1], a.shape[0])
    } else {
        (a.shape[0], a.shape[1])
    };
    let (k2, n) = if trans_b {
        (b.shape[1], b.shape[0])
    } else {
        (b.shape[0], b.shape[1])
    };
    if k != k2 {
        return Err(format!(
            "inner dimensions differ: {:?} × {:?}",
            a.shape, b.shape
        ));
    }
    let c = c.filter(|_| beta != 0.0);
    if let Some(c) = c
        && crate::tensor::broadcast_shape(&c.shape, &[m, n])? != [m, n]
    {
        return Err(format!(
            "C of shape {:?} does not broadcast to [{m}, {n}]",
            c.shape
        ));
    }
    let dims = Dims {
        m,
        k,
        n,
        trans_a,
        trans_b,
    };
    let data = match (&a.data, &b.data) {
        (Data::Float(x), Data::Float(y)) => {
            let c = c
                .map(|c| c.to_f32().map(|v| (v, &c.shape[..])))
                .transpose()?;
            Data::Float(product(
                x,
                y,
                c.as_ref().map(|(v, s)| (&v[..], *s)),
                alpha,
                beta,
                dims,
            ))
        }
        (Data::Double(x), Data::Double(y)) => {
            let c = c
                .map(|c| c.to_f64().map(|v| (v, &c.shape[..])))
                .transpose()?;
            Data::Double(product(
                x,
                y,
                c.as_ref().map(|(v, s)| (&v[..], *s)),
                alpha,
                beta,
                dims,
            ))
        }
        _ => {
            return Err(format!(
                "operands of types {} and {} (float or double, matching)",
                a.type_name(),
                b.type_name()
            ));
        }
    };
    Ok(Tensor::new(vec![m, n], data))
}

#[derive(Clone, Copy)]
struct Dims {
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
}

fn product<T: Real>(
    a: &[T],
    b: &[T],
    c: Option<(&[T], &[usize])>,
    alpha: f64,
    beta: f64,
    Dims {
        m,
        k,
        n,
        trans_a,
        trans_b,
    }: Dims,
) -> Vec<T> {
    // A as rows of length k and B as rows of length n, so the inner loop
    // runs along contiguous memory and vectorizes.
    let transpose = |v: &[T], rows: usize, cols: usize| -> Vec<T> {
        let mut t = vec![T::default(); v.len()];
        for r in 0..rows {
            for j in 0..cols {
                t[j * rows + r] = v[r * cols + j];
            }
        }
        t
    };
    let a_rows;
    let a = if trans_a {
        a_rows = transpose(a, k, m);
        &a_rows[..]
    } else {
        a
    };
    let b_rows;
    let b = if trans_b {
        b_rows = transpose(b, n, k);
        &b_rows[..]
    } else {
        b
    };
    let mut out = vec![T::default(); m * n];
    for (row, x) in out.chunks_mut(n.max(1)).zip(a.chunks(k.max(1))) {
        for (&xp, w) in x.iter().zip(b.chunks(n.max(1))) {
            for (o, &wj) in row.iter_mut().zip(w) {
                *o = *o + xp * wj;
            }
        }
    }
    if alpha != 1.0 {
        let alpha = T::of(alpha);
        out.iter_mut().for_each(|o| *o = *o * alpha);
    }
    if let Some((c, shape)) = c {
        let beta = T::of(beta);
        let index = crate::tensor::broadcast_index(shape, &[m, n]);
        for (o, i) in out.iter_mut().zip(index) {
            *o = *o + beta * c[i];
        }
    }
    out
}

/// The elements `pieces` names — (tensor, start, length) — in order.
fn select(parts: &[&Tensor], pieces: &[(usize, usize, usize)]) -> Result<Data, String> {
    macro_rules! pick {
        ($variant:ident) => {{
            let slices = parts
                .iter()
                .map(|t| match &t.data {
                    Data::$variant(v) => Ok(&v[..]),
                    _ => Err(format!(
                        "inputs of types {} and {} (they must match)",
                        parts[0].type_name(),
                        t.type_name()
                    )),
                })
                .collect::<Result<Vec<_>, String>>()?;
            let mut out = Vec::with_capacity(pieces.iter().map(|p| p.2).sum());
            for &(part, start, len) in pieces {
                out.extend_from_slice(&slices[part][start..start + len]);
            }
            Data::$variant(out)
        }};
    }
    Ok(match &parts[0].data {
        Data::Float(_) => pick!(Float),
        Data::Double(_) => pick!(Double),
        Data::Int64(_) => pick!(Int64),
        Data::Bool(_) => pick!(Bool),
        Data::Str(_) => pick!(Str),
    })
}

pub(crate) fn concat(parts: &[&Tensor], a: usize) -> Result<Tensor, String> {
    let first = parts[0];
    let mut shape = first.shape.clone();
    shape[a] = 0;
    for t in parts {
        if t.shape.len() != first.shape.len()
            || t.shape
                .iter()
                .zip(&first.shape)
                .enumerate()
                .any(|(i, (x, y))| i != a && x != y)
        {
            return Err(format!(
                "cannot concatenate shapes {:?} and {:?} along axis {a}",
                first.shape, t.shape
            ));
        }
        shape[a] += t.shape[a];
    }
    let outer: usize = first.shape[..a].iter().product();
    let inner = |t: &Tensor| t.shape[a..].iter().product::<usize>();
    let mut pieces = Vec::with_capacity(outer * parts.len());
    for o in 0..outer {
        for (i, t) in parts.iter().enumerate() {
            pieces.push((i, o * inner(t), inner(t)));
        }
    }
    Ok(Tensor::new(shape, select(parts, &pieces)?))
}

fn reshape(x: &Tensor, target: &[i64], allow_zero: bool) -> Result<Tensor, String> {
    let mut shape: Vec<usize> = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        shape.push(match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            0 if !allow_zero => *x
                .shape
                .get(i)
                .ok_or_else(|| format!("dimension {i} copies an input axis that does not exist"))?,
            d if d >= 0 => d as usize,
            _ => return Err(format!("invalid target shape {target:?}")),
        });
    }
    let known: usize = shape.iter().product();
    if let Some(i) = infer {
        if known == 0 || !x.len().is_multiple_of(known) {
            return Err(format!("cannot reshape {:?} into {target:?}", x.shape));
        }
        shape[i] = x.len() / known;
    }
    if shape.iter().product::<usize>() != x.len() {
        return Err(format!("cannot reshape {:?} into {target:?}", x.shape));
    }
    Ok(Tensor::new(shape, x.data.clone()))
}

fn argmax(x: &Tensor, a: usize, keep_dims: bool, last: bool) -> Result<Tensor, String> {
    let values = x.to_f64()?;
    let outer: usize = x.shape[..a].iter().product();
    let n = x.shape[a];
    let inner: usize = x.shape[a + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let mut best = 0;
            for j in 1..n {
                let (v, b) = (
                    values[(o * n + j) * inner + i],
                    values[(o * n + best) * inner + i],
                );
                if v > b || (last && v == b) {
                    best = j;
                }
            }
            out.push(best as i64);
        }
    }
    let mut shape = x.shape.clone();
    if keep_dims {
        shape[a] = 1;
    } else {
        shape.remove(a);
    }
    Ok(Tensor::new(shape, Data::Int64(out)))
}

fn gather(x: &Tensor, indices: &Tensor, a: usize) -> Result<Tensor, String> {
    let n = x.shape[a] as i64;
    let outer: usize = x.shape[..a].iter().product();
    let inner: usize = x.shape[a + 1..].iter().product();
    let idx: Vec<usize> = indices
        .ints()?
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + n } else { i };
            if (0..n).contains(&j) {
                Ok(j as usize)
            } else {
                Err(format!("index {i} is outside an axis of length {n}"))
            }
        })
        .collect::<Result<_, _>>()?;
    let mut pieces = Vec::with_capacity(outer * idx.len());
    for o in 0..outer {
        for &j in &idx {
            pieces.push((0, (o * x.shape[a] + j) * inner, inner));
        }
    }
    let mut shape = x.shape[..a].to_vec();
    shape.extend_from_slice(&indices.shape);
    shape.extend_from_slice(&x.shape[a + 1..]);
    Ok(Tensor::new(shape, select(&[x], &pieces)?))
}

/// The columns `columns` of a matrix (ArrayFeatureExtractor): the last axis
/// is selected, every other one kept.
pub(crate) fn take_columns(x: &Tensor, columns: &[usize]) -> Result<Tensor, String> {
    let (rows, cols) = x.matrix();
    if let Some(bad) = columns.iter().find(|&&c| c >= cols) {
        return Err(format!(
            "column {bad} is outside a tensor of {cols} columns"
        ));
    }
    let pieces: Vec<(usize, usize, usize)> = (0..rows)
        .flat_map(|r| columns.iter().map(move |&c| (0, r * cols + c, 1)))
        .collect();
    let mut shape = if x.shape.len() <= 1 {
        vec![1]
    } else {
        x.shape[..x.shape.len() - 1].to_vec()
    };
    shape.push(columns.len());
    Ok(Tensor::new(shape, select(&[x], &pieces)?))
}
