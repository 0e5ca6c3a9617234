"""key=value lines of an image-classification benchmark run, and the PyTorch peer's beside it.

usage: bench_report.py TASK RUN_DIR PEER_LINE [MODEL]
TASK is bench_cnn, bench_mlp or bench_folder; PEER_LINE is the last line cifar_train.py (or, for
bench_folder, folder_train.py) printed (or empty);
inference is the median of `burnlab eval --timed-passes` (eval.json), as the peer times it.
"""
import json
import sys

task, run, peer = sys.argv[1], sys.argv[2], sys.argv[3]
model = sys.argv[4] if len(sys.argv) > 4 else None
m = json.load(open(f"{run}/metrics.json"))
timed = sorted(json.load(open(f"{run}/eval.json"))["timed_images_per_s"])
train, infer = m["train_images_per_s"], timed[len(timed) // 2]
if task == "bench_folder":
    print(f"task=bench_folder model={model} image_size=224 epochs={m['epochs']} train_images={m['train_images']}")
    print(f"train_img_per_s={train:.2f}")
    print(f"sec_per_epoch={m['train_images'] / max(train, 1e-9):.1f}")
    print(f"infer_img_per_s={infer:.2f}")
    print(f"eval_split={m.get('test_split', 'test')} eval_acc={m['test']['accuracy']:.4f}")
    print(f"peak_rss_mib={m['peak_rss_mib']:.0f}")
    if peer:
        p = dict(kv.split("=", 1) for kv in peer.split() if "=" in kv)
        print(f"peer_train_img_per_s={float(p['train_img_per_s']):.2f}")
        print(f"peer_sec_per_epoch={float(p['sec_per_epoch']):.1f}")
        print(f"peer_infer_img_per_s={float(p['infer_img_per_s']):.2f}")
        print(f"peer_eval_acc={float(p['eval_acc']):.4f}")
        print(f"peer_peak_rss_mib={p['peak_rss_mib']}")
        print(f"ratio_train={train / float(p['train_img_per_s']):.3f}")
        print(f"ratio_infer={infer / float(p['infer_img_per_s']):.3f}")
    sys.exit(0)
if task == "bench_cnn":
    meta = json.load(open(f"{run}/run.json"))
    print(f"task=bench_cnn model={model} backend={meta['backend']} epochs={m['epochs']} train_images={m['train_images']}")
    print(f"train_img_per_s={train:.1f}")
    print("epoch_img_per_s=" + ",".join(f"{v:.0f}" for v in m.get("epoch_images_per_s", [])))
    print(f"infer_img_per_s_bs256={infer:.1f}")
    print("infer_img_per_s_passes=" + ",".join(f"{v:.0f}" for v in timed) + f",eval_pass={m['test']['images_per_s']:.0f}")
else:
    print(f"task={task} epochs={m['epochs']} train_images={m['train_images']}")
    print(f"train_img_per_s={train:.1f}")
    print(f"sec_per_epoch={m['train_images'] / train:.2f}")
    print(f"infer_img_per_s_bs256={infer:.1f}")
    print("infer_img_per_s_passes=" + ",".join(f"{v:.0f}" for v in timed))
print(f"wall_s={m['train_seconds']:.1f}")
print(f"valid_acc={m['valid']['accuracy']:.4f}")
print(f"test_acc={m['test']['accuracy']:.4f}")
if task == "bench_cnn" and m.get("test_tta"):
    print(f"test_acc_flip_tta={m['test_tta']['accuracy']:.4f}")
print(f"peak_rss_mib={m['peak_rss_mib']:.0f}")
if peer:
    p = dict(kv.split("=", 1) for kv in peer.split() if "=" in kv)
    print(f"peer_train_img_per_s={float(p['train_img_per_s']):.1f}")
    print(f"peer_infer_img_per_s_bs256={float(p['infer_img_per_s_bs256']):.1f}")
    print(f"peer_test_acc={float(p['test_acc']):.4f}")
    print(f"peer_peak_rss_mib={p['peak_rss_mib']}")
    print(f"ratio_train={train / float(p['train_img_per_s']):.3f}")
    print(f"ratio_infer={infer / float(p['infer_img_per_s_bs256']):.3f}")
    print(f"test_acc_minus_peer={m['test']['accuracy'] - float(p['test_acc']):+.4f}")
