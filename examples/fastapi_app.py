"""The same model server in FastAPI, to try drum-splitter with (the canary side).

    uvicorn --app-dir examples --host 127.0.0.1 --port 8081 fastapi_app:app

Same routes and answers as flask_app.py, except /info/ says "fastapi" and a CSV without rows
gets FastAPI's error shape ({"detail": ...}): the kind of difference a replay or the live
shadow reports.
"""
import resource

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.get("/ping")
@app.get("/health/")
def ping():
    return {"message": "OK"}


@app.get("/info/")
def info():
    return {"drumServer": "fastapi", "drumVersion": "example", "modelMetadata": {"name": "example", "targetType": "regression"}}


@app.get("/stats/")
def stats():
    return {"mem_info": {"drum_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}}


@app.post("/predict/")
async def predict(request: Request):
    rows = [r for r in (await request.body()).decode().splitlines() if r.strip()][1:]
    if not rows:
        return JSONResponse({"detail": "ERROR: Samples should be provided as a csv with a header row"}, status_code=422)
    return {"predictions": [sum(float(c) for c in r.split(",") if c.strip()) for r in rows]}
