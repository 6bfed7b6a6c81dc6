# Profile keys and panel labels as words, for figure titles (plots/style.gp: pretty). A title
# joins its parts with commas (model, machine, bandwidth, p).
s/,/, /g
s/a100-10GBps-x4/4 A100s, 10 GB\/s/
s/a100-10GBps/A100, 10 GB\/s/
s/a100-nvlink/A100, 300 GB\/s NVLink/
s/a100-published/A100 (published efficiencies)/
s/h100-nvlink/one node of 8 H100s (NVLink)/
s/h100-2x4/two nodes of 4 H100s (50 GB\/s between; link 1→2 slowed to 100 GB\/s)/
s/a100-2x8, p=8$/one node of 8 A100s (published efficiencies)/
s/a100-2x8, p=16$/two nodes of 8 A100s (25 GB\/s between)/
s/h100-2x8, p=8$/one node of 8 H100s/
s/h100-2x8, p=16$/two nodes of 8 H100s (50 GB\/s between)/
s/h200-nvlink/H200, NVLink/
s/profile-bw/the profile's links (300 GB\/s NVLink)/
s/full-speed/NVLink at full speed/
s/bw=/every link at /
s/link=\([0-9]*\)-\([0-9]*\)=/link \1-\2 at /
s/\([0-9.][0-9.]*\)GB\/s/\1 GB\/s/g
s/\([0-9.][0-9.]*\)MB\/s/\1 MB\/s/g
s/p=1$/1 GPU/
s/p=\([0-9]*\)/\1 GPUs/
s/\bllama-7b\b/Llama-7B/g
s/\bllama-2-70b\b/Llama-2-70B (GQA 8:1)/g
s/\bllama-3-8b\b/Llama-3-8B (GQA 4:1)/g
s/\bllama-3\.1-8b\b/Llama-3.1-8B (GQA 4:1)/g
s/\bmistral-7b\b/Mistral-7B (GQA 4:1, 4k window)/g
s/\bfalcon-7b\b/Falcon-7B (MQA)/g
s/\bqwen2-7b\b/Qwen2-7B (GQA 7:1)/g
