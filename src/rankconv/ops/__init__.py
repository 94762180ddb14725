"""Pure functions on NumPy arrays under Keras 3's `keras.ops` names, each differentiable.

`rankconv.ops.conv` is Keras's `ops.conv` for any rank; `conv_general` is the general
convolution underneath. Inside `rankconv.grad`/`value_and_grad` or a `GradientTape`, every op
records its vector-Jacobian product.
"""

from rankconv.ops.autodiff import GradientTape, Tracer, Variable, grad, stop_gradient, value_and_grad
from rankconv.ops.conv_common import get_num_threads, set_conv_workspace, set_num_threads
from rankconv.ops.convolution import conv_general, conv_general_vjp, conv_plan, conv_vjp
from rankconv.ops.jit import set_jit
from rankconv.ops.nn import (
    FUSED_ACTIVATIONS,
    average_pool,
    conv,
    elu,
    fused_conv,
    gelu,
    leaky_relu,
    log_softmax,
    max_pool,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    softsign,
    swish,
    tanh,
)
from rankconv.ops.numpy_ops import (
    abs,
    absolute,
    add,
    amax,
    amin,
    argmax,
    argmin,
    cast,
    clip,
    concatenate,
    convert_to_numpy,
    divide,
    dot,
    equal,
    exp,
    expand_dims,
    getitem,
    log,
    log1p,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    multiply,
    negative,
    one_hot,
    ones_like,
    pad,
    power,
    reshape,
    scatter_rows,
    shape,
    sign,
    sqrt,
    square,
    squeeze,
    stack,
    subtract,
    sum,
    take,
    take_along_axis,
    transpose,
    true_divide,
    where,
    zeros_like,
)
from rankconv.ops.planner import (
    conv_algorithm,
    get_conv_algorithm,
    get_conv_planning,
    set_conv_algorithm,
    set_conv_planning,
)
