#!/usr/bin/env python3
"""gensim CBOW with negative sampling, the peer of `BENCH_ARCH=cbow just bench-word2vec`.

usage: gensim_cbow.py CORPUS OUT_VECTORS [--workers N] [--seed S] [--epochs E]

The same settings and timing as ../shared/peers/word2vec/w2v_gensim_train.py (which is
skip-gram only), with sg=0, cbow_mean=1 and alpha=0.05 (word2vec.c's CBOW default).
"""
import argparse
import time

from gensim.models import Word2Vec

ap = argparse.ArgumentParser()
ap.add_argument('corpus')
ap.add_argument('out')
ap.add_argument('--workers', type=int, default=2)
ap.add_argument('--seed', type=int, default=1)
ap.add_argument('--epochs', type=int, default=5)
a = ap.parse_args()

words = open(a.corpus, encoding='utf-8').read().split()
sents = [words[i:i + 10000] for i in range(0, len(words), 10000)]
m = Word2Vec(sg=0, cbow_mean=1, hs=0, negative=5, vector_size=100, window=5, min_count=5, sample=1e-3,
             alpha=0.05, min_alpha=0.0001, epochs=a.epochs, workers=a.workers, seed=a.seed)
m.build_vocab(sents)
t0 = time.time()
m.train(sents, total_examples=m.corpus_count, epochs=m.epochs)
train_s = time.time() - t0
m.wv.save_word2vec_format(a.out, binary=False)
print(f'raw_words_per_s={round(len(words) * a.epochs / train_s)}')
print(f'train_wall_s={train_s:.3f}')
