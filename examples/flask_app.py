"""A DRUM-shaped model server in Flask, to try drum-splitter with (the baseline side).

    gunicorn -w 2 -b 127.0.0.1:8080 --chdir examples flask_app:app

It answers the routes drum-splitter uses: /ping and /health/ (health checks and the
verification after a rollback), /info/ (names the server), /stats/ (mem_info.drum_rss, the
memory the rollout's memory check reads) and POST /predict/ (a CSV, one prediction a row).
"""
import resource

from flask import Flask, jsonify, request

app = Flask(__name__)


def rss_mb():
    # ru_maxrss is in KiB on Linux: the peak, which is what a memory regression moves.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


@app.get("/ping")
@app.get("/health/")
def ping():
    return jsonify(message="OK")


@app.get("/info/")
def info():
    return jsonify(drumServer="flask", drumVersion="example", modelMetadata={"name": "example", "targetType": "regression"})


@app.get("/stats/")
def stats():
    return jsonify(mem_info={"drum_rss": rss_mb()})


@app.post("/predict/")
def predict():
    rows = [r for r in request.get_data(as_text=True).splitlines() if r.strip()][1:]
    if not rows:
        return jsonify(message="ERROR: Samples should be provided as a csv with a header row"), 422
    return jsonify(predictions=[sum(float(c) for c in r.split(",") if c.strip()) for r in rows])
