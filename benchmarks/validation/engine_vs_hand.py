"""The simulation engine against hand-written JAX loops of the same dynamics (docs/validation/engine.md).

Each hand loop does the same work as the engine on least squares: seeds batched as arrays, one
``lax.scan`` over the steps, the same draws per step (a fresh sample and its label noise online; an
index, a permutation per epoch, or all n samples on finite data), no observables but the last
parameter. Both are compiled first; the figure is the hand loop's time over the engine's run time,
each the best of ``ROUNDS`` interleaved runs (1 = as fast as the hand loop).

    python benchmarks/validation/engine_vs_hand.py [d] [seeds]
"""
import sys
import time

import jax
import jax.numpy as jnp

import hdbench

D = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SEEDS = int(sys.argv[2]) if len(sys.argv) > 2 else 16
ALPHA, T_MAX, GAMMA, SIGMA, H, ROUNDS = 2.0, 8.0, 0.5, 0.5, 0.01, 5


def scenario(dynamics, finite):
    spec = {"model": {"name": "linear", "params": {"sigma": SIGMA}}, "dynamics": {"name": dynamics, "params": {"gamma": GAMMA}},
            "d": D, "t_max": T_MAX, "seeds": SEEDS, "n_times": 41}
    if finite:
        spec["alpha"] = ALPHA
    return hdbench.Scenario.from_dict(spec)


def setup(key):
    kt, kx, ke = jax.random.split(key, 3)
    n = int(ALPHA * D)
    teacher = jax.random.normal(kt, (SEEDS, D)) / jnp.sqrt(D)
    X = jax.random.normal(kx, (SEEDS, n, D))
    return teacher, X, jnp.einsum("snd,sd->sn", X, teacher) + SIGMA * jax.random.normal(ke, (SEEDS, n))


def online(update, init):
    steps, lr = int(T_MAX * D), GAMMA / D

    @jax.jit
    def run(key):
        teacher, _, _ = setup(key)

        def step(carry, k):
            kx, ke = jax.random.split(jax.random.fold_in(key, k))
            x = jax.random.normal(kx, (SEEDS, D))
            y = (x * teacher).sum(1) + SIGMA * jax.random.normal(ke, (SEEDS,))
            g = ((x * carry[0]).sum(1) - y)[:, None] * x
            return update(carry, g, lr, k), None
        return jax.lax.scan(step, init(jnp.zeros((SEEDS, D))), jnp.arange(steps))[0][0]
    return run


def sgd_update(carry, g, lr, k):
    return (carry[0] - lr * g,)


def momentum_update(carry, g, lr, k, beta=0.9):
    v = beta * carry[1] + g
    return carry[0] - lr * v, v


def adam_update(carry, g, lr, k, b1=0.9, b2=0.999, eps=1e-8):
    m, v = b1 * carry[1] + (1 - b1) * g, b2 * carry[2] + (1 - b2) * g * g
    t = k + 1
    lr = GAMMA / D**1.5
    return carry[0] - lr * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps), m, v


def finite(kind):
    n = int(ALPHA * D)
    steps = int(T_MAX * D) if kind in ("sgd", "sgd-epochs") else int(round(T_MAX / H))
    rows = jnp.arange(SEEDS)

    @jax.jit
    def run(key):
        teacher, X, y = setup(key)

        def sgd_step(theta, k, idx):
            x = X[rows, idx]
            return theta - GAMMA / D * ((x * theta).sum(1) - y[rows, idx])[:, None] * x

        if kind == "sgd":
            def step(theta, k):
                return sgd_step(theta, k, jax.random.randint(jax.random.fold_in(key, k), (SEEDS,), 0, n)), None
            return jax.lax.scan(step, jnp.zeros((SEEDS, D)), jnp.arange(steps))[0]
        if kind == "sgd-epochs":
            def epoch(theta, e):
                perm = jax.vmap(lambda s: jax.random.permutation(jax.random.fold_in(key, e * SEEDS + s), n))(rows)
                return jax.lax.scan(lambda th, j: (sgd_step(th, j, perm[:, j]), None), theta, jnp.arange(n))[0], None
            return jax.lax.scan(epoch, jnp.zeros((SEEDS, D)), jnp.arange(steps // n))[0]

        def step(theta, k):
            r = jnp.einsum("snd,sd->sn", X, theta) - y
            if kind == "sgf":
                xi = jax.random.normal(jax.random.fold_in(key, k), (SEEDS, n))
                r = r * (1 + n / jnp.sqrt(H * D * n) * (xi - xi.mean(1, keepdims=True)))
            return theta - GAMMA * H / n * jnp.einsum("snd,sn->sd", X, r), None
        return jax.lax.scan(step, jnp.zeros((SEEDS, D)), jnp.arange(steps))[0]
    return run


HAND = {"online-sgd": online(sgd_update, lambda z: (z,)), "momentum": online(momentum_update, lambda z: (z, z)),
        "adam": online(adam_update, lambda z: (z, z, z)), "sgd": finite("sgd"), "sgd-epochs": finite("sgd-epochs"),
        "gd": finite("gd"), "sgf": finite("sgf")}


def main():
    key = jax.random.PRNGKey(0)
    print(f"d = {D}, {SEEDS} seeds, t = {T_MAX}, alpha = {ALPHA} (finite data), h = {H} (flows)")
    print("| dynamics | engine run s | hand loop s | hand / engine |\n|---|---|---|---|")
    for name, hand in HAND.items():
        s = scenario(name, name not in ("online-sgd", "momentum", "adam"))
        hdbench.simulate(s)
        hand(key).block_until_ready()
        engine_s = hand_s = float("inf")
        for _ in range(ROUNDS):
            engine_s = min(engine_s, hdbench.simulate(s).run_s)
            start = time.perf_counter()
            hand(key).block_until_ready()
            hand_s = min(hand_s, time.perf_counter() - start)
        print(f"| {name} | {engine_s:.3f} | {hand_s:.3f} | {hand_s / engine_s:.2f} |", flush=True)


if __name__ == "__main__":
    main()
