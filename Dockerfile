# The training image: the project and its exact pins, entry point `python -m trainer.task`.
#
#   docker build -t IMAGE .                                   # CPU
#   docker build -t IMAGE --build-arg VARIANT=gpu .            # GPU: TensorFlow's CUDA libraries from pip
#
# The same pins as everywhere (constraints.txt); the GPU variant adds tensorflow[and-cuda] at the
# pinned TensorFlow version, which brings its CUDA and cuDNN wheels (a GPU driver on the host suffices).
# TensorFlow 2.16 does not find those wheels' libraries by itself (tensorflow/tensorflow#63362: "Skipping
# registering GPU devices", then training on the CPU), so the image registers their folders with the
# dynamic linker and puts their ptxas (for XLA) on the PATH. A run with --accelerator=gpu refuses to start
# where TensorFlow still finds no GPU.
FROM python:3.11-slim

ARG VARIANT=cpu
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY constraints.txt setup.py MANIFEST.in README.md ./
COPY pipeline pipeline
COPY beam_jobs beam_jobs
COPY trainer trainer
RUN pip install -c constraints.txt ".[trainer]" \
 && if [ "$VARIANT" = "gpu" ]; then \
      pip install -c constraints.txt "tensorflow[and-cuda]==$(grep -i '^tensorflow==' constraints.txt | cut -d= -f3)" \
      && nvidia="$(python -c 'import nvidia; print(nvidia.__path__[0])')" \
      && ls -d "$nvidia"/*/lib > /etc/ld.so.conf.d/tensorflow-cuda.conf && ldconfig \
      && ln -s "$nvidia/cuda_nvcc/bin/ptxas" /usr/local/bin/ptxas; \
    fi

ENTRYPOINT ["python", "-m", "trainer.task"]
