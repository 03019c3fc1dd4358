"""Draws a random 10-incident schedule for `helios traffic --scenario weeks` (held-out pins).

Usage: draw_schedules.py SEED [SEED ...]
The recipe of the sixth held-out schedule: kinds shuffled (3 drops, 2 latency spikes, 2 error
bursts, 2 partial outages, 1 creep), ten distinct days of 3-13, drops at peak hours 10-17, the
others at any hour; prints one `--incident` spec per line under each seed.
"""
import random, sys
EP = {"checkout":["/cart","/pay","/confirm"],"auth":["/login","/token","/logout"],
      "search":["/search","/suggest"],"catalog":["/items","/item","/reviews","/images"],
      "notify":["/email","/push"]}
SVC = list(EP)
def draw(seed):
    r = random.Random(seed)
    kinds = ["drop"]*3 + ["latency"]*2 + ["errors"]*2 + ["partial"]*2 + ["creep"]
    r.shuffle(kinds)
    days = sorted(r.sample(range(3, 14), 10))
    out = []
    for k, d in zip(kinds, days):
        s = r.choice(SVC)
        if k == "drop":
            h = r.randint(10, 17); out.append(f"drop:{s}:at={d}d{h}h:for={r.choice([40,45])}m:x=0.3")
        elif k == "latency":
            h = r.randint(0, 23); out.append(f"latency:{s}:at={d}d{h}h:for={r.choice([20,25])}m:x={r.choice([10,12])}:p=0.08")
        elif k == "errors":
            h = r.randint(0, 23); out.append(f"errors:{s}:at={d}d{h}h:for={r.choice([25,30])}m:x={r.choice([0.25,0.3])}")
        elif k == "partial":
            h = r.randint(0, 23); out.append(f"partial:{s}:at={d}d{h}h:for=30m:x={r.choice([0.85,0.9])}:ep={r.choice(EP[s])}")
        else:
            h = r.randint(0, 23)
            if d == 13 and h > 18: h = 18
            out.append(f"creep:{s}:at={d}d{h}h:for=5h:x=3:ramp=4h")
    return out
for seed in map(int, sys.argv[1:]):
    print(seed); [print("  ", x) for x in draw(seed)]
