"""Fixtures of the round-3 audit (tests/test_audit3.sh): .npy token files, token text and JSON,
a config.json, a tiny model's safetensors checkpoint and its sharded forms, sweep files and
lookup CSV rows, each either well formed or broken in one way. Usage: mk_inputs.py SRC DIR"""
import json
import os
import random
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
os.chdir(out)


def npy(name, hdr, data, ver=1, pad=True):
    h = hdr
    if pad:
        h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    size = struct.pack("<H", len(h)) if ver == 1 else struct.pack("<I", len(h))
    with open(name, "wb") as f:
        f.write(b"\x93NUMPY" + bytes([ver, 0]) + size + h.encode("latin1") + data)


def i8(xs):
    return b"".join(struct.pack("<q", x) for x in xs)


def i4(xs):
    return b"".join(struct.pack("<i", x) for x in xs)


D = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }"
npy("ok8.npy", D % ("<i8", "False", "(3,)"), i8([1, 2, 3]))
npy("ok4.npy", D % ("<i4", "False", "(3,)"), i4([1, 2, 3]))
npy("okv2.npy", D % ("<i8", "False", "(3,)"), i8([1, 2, 3]), ver=2)
npy("okdq.npy", '{"descr":"<i8","fortran_order":False,"shape":(3,)}', i8([1, 2, 3]))
npy("be.npy", D % (">i8", "False", "(3,)"), i8([1, 2, 3]))
npy("f8.npy", D % ("<f8", "False", "(3,)"), i8([1, 2, 3]))
npy("u4.npy", D % ("<u4", "False", "(3,)"), i4([1, 2, 3]))
npy("fortran.npy", D % ("<i8", "True", "(3,)"), i8([1, 2, 3]))
npy("2d.npy", D % ("<i8", "False", "(1, 3)"), i8([1, 2, 3]))
npy("trunc.npy", D % ("<i8", "False", "(3,)"), i8([1, 2, 3])[:-3])
npy("extra.npy", D % ("<i8", "False", "(3,)"), i8([1, 2, 3]) + b"x")
# what strstr over the header took for int64 C-order one-dimensional arrays
npy("f8-i8-key.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': '<i8'}",
    i8([1, 2, 3]))
npy("2d-tuple-key.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (3, 1), 'x': (1,)}",
    i8([1, 2, 3]))
npy("descr-twice.npy", "{'descr': '<f8', 'descr': '<i8', 'fortran_order': False, 'shape': (3,)}",
    i8([1, 2, 3]))
npy("shape-junk.npy", D % ("<i8", "False", "(3x,)"), i8([1, 2, 3]))
npy("shape-sign.npy", D % ("<i8", "False", "(+3,)"), i8([1, 2, 3]))
npy("structured.npy", "{'descr': [('a', '<i8')], 'fortran_order': False, 'shape': (3,)}",
    i8([1, 2, 3]))
npy("version9.npy", D % ("<i8", "False", "(3,)"), i8([1, 2, 3]), ver=9)
npy("no-fortran.npy", "{'descr': '<i8', 'shape': (3,)}", i8([1, 2, 3]))
npy("nul-header.npy", D % ("<i8", "False", "(3,)") + "\0", i8([1, 2, 3]))

open("tok-nul.txt", "wb").write(b"1\n2\x007\n3\n")
open("tok-nul.json", "wb").write(b"[1,2,3]\x00,99]")
open("tok.json", "wb").write(b"[1,2,3]")
cfg = open(os.path.join(src, "tests/golden/hf_configs/llama2-7b.json"), "rb").read()
os.makedirs("hf", exist_ok=True)  # apart: a config.json beside the checkpoints would be theirs
open("hf/config.json", "wb").write(cfg)
open("config-nul.json", "wb").write(cfg[: cfg.rfind(b"}") + 1] + b"\0 garbage {")

# the tiny model (data/models/tiny.ini) as a Llama checkpoint
L, d, h, kv, hd, ffn, V = 2, 64, 4, 2, 16, 160, 128
T = {"model.embed_tokens.weight": (V, d)}
for l in range(L):
    p = "model.layers.%d." % l
    T.update({p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
              p + "self_attn.q_proj.weight": (h * hd, d), p + "self_attn.k_proj.weight": (kv * hd, d),
              p + "self_attn.v_proj.weight": (kv * hd, d), p + "self_attn.o_proj.weight": (d, h * hd),
              p + "mlp.gate_proj.weight": (ffn, d), p + "mlp.up_proj.weight": (ffn, d),
              p + "mlp.down_proj.weight": (d, ffn)})
T.update({"model.norm.weight": (d,), "lm_head.weight": (V, d)})
names = list(T)
random.seed(1)


def st(path, tensors, tail=b""):
    hdr, data = {}, b""
    for n in tensors:
        k = 1
        for x in T[n]:
            k *= x
        b = struct.pack("<%df" % k, *[random.uniform(-0.1, 0.1) for _ in range(k)])
        hdr[n] = {"dtype": "F32", "shape": list(T[n]), "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    j = json.dumps(hdr).encode() + tail
    j += b" " * ((8 - len(j) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(j)) + j + data)


st("one.safetensors", names)
st("nul-header.safetensors", names, tail=b'\0{"x": 1}')
a, b = names[:10], names[10:]
wm = {n: "a.safetensors" for n in a}
wm.update({n: "b.safetensors" for n in b})


def shards(folder, index, holds_b=b):
    os.makedirs(folder, exist_ok=True)
    st(folder + "/a.safetensors", a)
    st(folder + "/b.safetensors", holds_b)
    open(folder + "/model.safetensors.index.json", "wb").write(
        index if isinstance(index, bytes) else json.dumps({"weight_map": index}).encode())


shards("sh-ok", wm)
shards("sh-two-copies", wm, holds_b=[names[0]] + b)  # b holds a's first tensor too
text = json.dumps({"weight_map": wm})
shards("sh-key-twice", (text[:-2] + ', "%s": "b.safetensors"}}' % names[0]).encode())
shards("sh-nul", text.encode() + b"\0 garbage")
shards("sh-not-listed", {k: v for k, v in wm.items() if k != names[1]})
shards("sh-not-there", dict(wm, **{"model.extra.weight": "a.safetensors"}))

row = "2,llama-7b,b8a554fa8fe9d810,a100-nvlink,a649c35253fb2e7b,2,1,kvr,hier,%s,%s,64,1024,0.041,512;512,0;1"
head = ("format_version,model,model_hash,machine,machine_hash,p,tp_degree,scheme,method,objective,"
        "objective_trials,granularity_tokens,ctx_tokens,predicted_ttft_s,partition_tokens,mapping")
for name, obj, trials in [("ok", "mean", "1"), ("p95", "p95", "16"), ("objective", "bogus", "1"),
                          ("trials0", "mean", "0"), ("trialsx", "mean", "x"), ("p0", "p0", "16"),
                          ("p101", "p101", "16")]:
    open("lk-%s.csv" % name, "w").write(head + "\n" + row % (obj, trials) + "\n")

sweep = "[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2, 4\nschemes = tsp, kvr-even\nctx = 1k, 2k\n"
for name, extra in [("ok", ""), ("tp3", "tp = 2, 3"), ("tp8", "tp = 8"), ("tp-twice", "tp = 2, 2"),
                    ("fwd-twice", "kv_forward = whole, whole"),
                    ("fwd-four", "kv_forward = whole, streamed, direct, whole"),
                    ("noise-comma", "noise = random:0.3@0-1,"), ("noise-link-twice", "noise = random:0.3@0-1,1-0"),
                    ("noise-twice", "noise = random:0.3; random:0.3"), ("seeds-twice", "noise = random:0.3\nseeds = 1, 1"),
                    ("seed-big", "noise = random:0.3\nseeds = 4294967296"), ("ctx-twice", "")]:
    text = sweep.replace("ctx = 1k, 2k", "ctx = 1k, 1k-2k+1k") if name == "ctx-twice" else sweep
    open("sw-%s.ini" % name, "w").write(text + extra + "\n")
open("sw-db-slash.ini", "w").write(sweep.replace("[axes]", "db = %s/dbdir4/\n[axes]" % out))
open("sw-db-self.ini", "w").write(sweep.replace("[axes]", "db = %s/sw-db-self.ini\n[axes]" % out))
open("sw-trials.ini", "w").write(sweep.replace("[axes]", "trials = 1000000\n[axes]").replace("gpus = 2, 4", "gpus = 2"))
prof = open(os.path.join(src, "data/machines/a100-10GBps-x4.ini")).read()
open("noise-seed-big.ini", "w").write(prof + "\n[noise]\nshare = 0.3\nmode = random\nseed = 4294967296\n")
open("links-both-ways.ini", "w").write(prof + "\n[links]\n0-1 = 1GB/s\n1-0 = 2GB/s\n")
open("links-directed-then-both.ini", "w").write(prof + "\n[links]\n0>1 = 1GB/s\n0-1 = 2GB/s\n")
open("links-directed-each-way.ini", "w").write(prof + "\n[links]\n0>1 = 1GB/s\n1>0 = 2GB/s\n")
open("noise-no-share.ini", "w").write(prof + "\n[noise]\nlinks = 0-1\nseed = 3\n")
open("noise-seed-max.ini", "w").write(prof + "\n[noise]\nshare = 0.3\nmode = random\nseed = 4294967295\n")
