"""Reference for the GPU signature benchmark (docs/BENCHMARKS.md, "GPU signatures").

make:  writes Qwen2.5-{0.5B,1.5B,7B}-shaped checkpoints with random bf16 weights
       (Hugging Face layout: config.json + model.safetensors shards).
run:   the same signature work with transformers (sdpa, bf16): forward, log_softmax in fp32,
       top-20 and entropy at every position of a batch of 16 x 512 random tokens; median of CUDA-event
       timed iterations after warm-up. Prints one JSON line per model.
"""
import json
import sys
import time

import torch

SHAPES = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                          num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                          num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2.5-7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                        num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False),
}


def make(out_dir, name):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    cfg = Qwen2Config(vocab_size=151936, max_position_embeddings=32768, rope_theta=1000000.0,
                      rms_norm_eps=1e-6, torch_dtype="bfloat16", **SHAPES[name])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(f"{out_dir}/{name}", safe_serialization=True)
    del model
    torch.cuda.empty_cache()


def timed(fn, iters=10):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def run(path, batch=16, tokens=512, k=20):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16,
                                                 attn_implementation="sdpa").cuda().eval()
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(1, model.config.vocab_size, (batch, tokens), generator=g).cuda()

    @torch.no_grad()
    def signature():
        logits = model(ids).logits
        logp = torch.log_softmax(logits.float(), -1)
        top = torch.topk(logp, k, -1)
        ent = -(logp.exp() * logp).sum(-1)
        return top, ent

    @torch.no_grad()
    def forward():
        return model(ids).logits

    sig = timed(signature)
    fwd = timed(forward)
    print(json.dumps({"model": path, "reference": "transformers", "transformers": __import__("transformers").__version__,
                      "torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
                      "signature_ms": sig, "tokens_per_s": batch * tokens / (sig / 1000),
                      "forward_logits_ms": fwd}), flush=True)
    del model
    torch.cuda.empty_cache()


if __name__ == "__main__":
    cmd, out_dir = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or list(SHAPES)
    for n in names:
        if cmd == "make":
            t = time.time()
            make(out_dir, n)
            print(f"wrote {out_dir}/{n} in {time.time() - t:.1f} s", file=sys.stderr, flush=True)
        else:
            run(f"{out_dir}/{n}")
