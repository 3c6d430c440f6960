r"""STOI of espeak-ng speech passed through dMel tokens and the Griffin-Lim vocoder.

  python -m experiments.benchmark_vocoder [--utterances=24] [--out=experiments/results/vocoder.json]

For each frame rate: speech -> log-mel -> 16-bin tokens -> bin centres -> waveform, scored with STOI
against the clean input. Rows: offline librosa Griffin-Lim (32 iterations, the reference recipe) and
the live decoder fed 200 ms pieces (scored after removing its stated latency), with the NNLS magnitude
inversion (16 iterations) and as the live server runs it (the cheap pseudo-inverse inversion, 8
iterations), plus the time one piece takes, alone and for --sessions streams at once (random log-mel).
Reference measured on this machine with librosa Griffin-Lim (32 iterations): 0.84 at 40 frames/s and 0.88
at 80 frames/s.
"""
import time

import numpy as np
from absl import flags
from pystoi import stoi

from experiments import common
from experiments.common import write_results
from interaction.codecs import dmel, vocoder
from interaction.data import lexicon, speech

_N = flags.DEFINE_integer("utterances", 24, "utterances to score (voices and languages alternate)")
_SESSIONS = flags.DEFINE_integer("sessions", 32, "streams rendered at once for the last column, as a live server's")
_OUT = flags.DEFINE_string("out", "experiments/results/vocoder.json", "where to write the JSON results")
REFERENCE = {40: 0.84, 80: 0.88}
_LIVE_ITERS = {"nnls": 16, "pinv": 8}  # the live decoder's default, and the live server's cheaper setting
VOICES = [speech.Voice("en-us", "f3"), speech.Voice("en-us", "m3"), speech.Voice("en", "f5"),
          speech.Voice("en", "m1"), speech.Voice("es", "m3"), speech.Voice("fr", "f2"), speech.Voice("de", "m2")]


def _sentences(n):
    rng = np.random.default_rng(0)
    english = [lexicon.fill(a, rng) for _, a in lexicon.USER_QUESTIONS] + lexicon.BACKGROUND
    foreign = {lang: [src for src, _ in pairs] for lang, pairs in lexicon.TRANSLATIONS.items()}
    out = []
    for i in range(n):
        voice = VOICES[i % len(VOICES)]
        pool = foreign.get(voice.language, english)
        out.append((pool[(i // len(VOICES)) % len(pool)], voice))
    return out


def _warm(cfg):
    """Compiles the live decoder's iterations for every piece length an utterance can end on."""
    for inversion, n_iter in _LIVE_ITERS.items():
        stream = vocoder.StreamingGriffinLim(cfg, inversion=inversion, n_iter=n_iter)
        for frames in range(1, cfg.frames_per_microturn + 1):
            stream.push(np.full((frames, cfg.n_mels), cfg.log_min, np.float32))


def _many_streams(cfg, sessions: int, pieces: int = 40) -> tuple[float, float]:
    """p50 and p99 ms of one 200 ms piece of `sessions` streams at once, as the live server renders them."""
    stream = vocoder.live_decoder(cfg, sessions)
    rng = np.random.default_rng(0)
    times = []
    for i in range(pieces + 3):
        piece = rng.uniform(-5.0, 0.0, (sessions, cfg.frames_per_microturn, cfg.n_mels)).astype(np.float32)
        t0 = time.perf_counter()
        stream.push(piece)
        if i >= 3:  # the first compiles
            times.append(1000 * (time.perf_counter() - t0))
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main(argv):
    del argv
    utterances = []
    for sentence, voice in _sentences(_N.value):
        audio = np.pad(speech.synthesize(sentence, voice).audio * 0.5, (1600, 1600))
        utterances.append((audio[: len(audio) // 400 * 400], voice.name))
    results = {"utterances": len(utterances), "seconds": sum(len(a) for a, _ in utterances) / 16000, "rates": {}}
    for rate in (40, 80):
        cfg = dmel.DMelConfig(frame_rate=rate)
        _warm(cfg)
        offline = []
        live = {inversion: ([], []) for inversion in ("nnls", "pinv")}  # STOI, piece ms
        for audio, _ in utterances:
            logmel = dmel.dequantize(dmel.quantize(dmel.log_mel(audio, cfg), cfg), cfg)
            offline.append(stoi(audio, vocoder.decode(logmel, cfg, n_iter=32), 16000))
            for inversion, (scores, piece_ms) in live.items():
                stream = vocoder.StreamingGriffinLim(cfg, inversion=inversion, n_iter=_LIVE_ITERS[inversion])
                f = cfg.frames_per_microturn
                pieces = []
                for i in range(0, len(logmel), f):
                    t0 = time.perf_counter()
                    pieces.append(stream.push(logmel[i : i + f]))
                    piece_ms.append(1000 * (time.perf_counter() - t0))
                d = cfg.history
                scores.append(stoi(audio[: len(audio) - d], np.concatenate(pieces)[d:], 16000))
        r = results["rates"][rate] = {
            "reference_stoi": REFERENCE[rate], "offline_stoi": float(np.mean(offline)),
            "offline_stoi_min": float(np.min(offline)), "live_added_latency_ms": 1000 * cfg.history / cfg.sample_rate}
        for inversion, (scores, piece_ms) in live.items():
            tag = "live" if inversion == "nnls" else f"live_{inversion}"
            r[f"{tag}_stoi"] = float(np.mean(scores))
            r[f"{tag}_piece_ms_p50"] = float(np.percentile(piece_ms, 50))
            r[f"{tag}_piece_ms_p99"] = float(np.percentile(piece_ms, 99))
        r["live_pinv_sessions"] = _SESSIONS.value
        r["live_pinv_sessions_piece_ms_p50"], r["live_pinv_sessions_piece_ms_p99"] = _many_streams(cfg, _SESSIONS.value)
    print(f"{results['utterances']} utterances, {results['seconds']:.0f} s of speech, {len(VOICES)} voices, "
          "4 languages")
    print(f"{'frames/s':>8} {'reference':>10} {'offline':>8} {'ratio':>6} {'live':>6} {'latency ms':>11} "
          f"{'piece ms p50/p99':>17} {'live pinv':>10} {'piece ms p50/p99':>17} {'N streams ms p50/p99':>21}")
    for rate, r in results["rates"].items():
        print(f"{rate:>8} {r['reference_stoi']:>10.2f} {r['offline_stoi']:>8.3f} "
              f"{r['offline_stoi'] / r['reference_stoi']:>6.3f} {r['live_stoi']:>6.3f} "
              f"{r['live_added_latency_ms']:>11.1f} {r['live_piece_ms_p50']:>8.1f}/{r['live_piece_ms_p99']:.1f} "
              f"{r['live_pinv_stoi']:>10.3f} {r['live_pinv_piece_ms_p50']:>8.1f}/{r['live_pinv_piece_ms_p99']:<8.1f} "
              f"{r['live_pinv_sessions_piece_ms_p50']:>12.1f}/{r['live_pinv_sessions_piece_ms_p99']:.1f}")
    write_results(_OUT.value, results)


if __name__ == "__main__":
    common.run(main)
