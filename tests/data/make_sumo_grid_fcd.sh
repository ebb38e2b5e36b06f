#!/bin/sh
# The exact commands that made sumo_grid_fcd.xml.gz (eclipse-sumo 1.28.0 from PyPI:
# pip install eclipse-sumo==1.28.0): the case study's 1 km square as a 5 x 5 grid of 250 m
# blocks, a random trip every 2 s for 200 s (seed 7), simulated at the case study's 0.5 s slot.
# wdtnopt.processes.sumo.build_sumo_grid(SumoGridSpec(duration_s=200)) runs the same commands.
set -e
out=$(cd "$(dirname "$0")" && pwd)/sumo_grid_fcd.xml.gz
SUMO_HOME=$(python -c "import sumo; print(sumo.SUMO_HOME)")
export SUMO_HOME
tmp=$(mktemp -d)
cd "$tmp"
netgenerate --grid --grid.number=5 --grid.length=250 --seed 7 -o grid.net.xml
python "$SUMO_HOME/tools/randomTrips.py" -n grid.net.xml -b 0 -e 200 -p 2 --seed 7 -o trips.xml
sumo -n grid.net.xml -r trips.xml --begin 0 --end 200 --step-length 0.5 --seed 7 \
     --fcd-output fcd.xml --no-step-log true
gzip -9n < fcd.xml > "$out"
rm -rf "$tmp"
