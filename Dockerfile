# servo-k8s-multijob: one image for Knative Serving, OpenFaaS (lang: dockerfile) and the admission
# webhook. On Node.js 24, the active LTS; CI runs the tests on the same major.

# Build stage: compile the TypeScript with the dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY handler ./handler
COPY scripts ./scripts
RUN npm run build

# Runtime stage: production dependencies and the compiled handler only.
FROM node:24-bookworm-slim
ENV NODE_ENV=production PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# The bundle (esbuild, at build time) of the command and all it imports but node_modules.
COPY --from=build /app/dist/handler/servo.cjs ./dist/handler/servo.cjs
# What `demo` replays and admits, so that `docker run IMAGE demo` runs the whole loop.
COPY example/events ./example/events
COPY example/admission/review.json ./example/admission/review.json
# The image's node user, by number: runAsNonRoot can only check a numeric user.
USER 1000:1000
EXPOSE 8080 8443
# The command is the argument: `serve` (the function) by default, `webhook` for the admission webhook.
# An absolute path, so that `docker run -w /work IMAGE invoke FILE` reads files of another folder.
# --max-semi-space-size=4 (MiB; V8's default grows to 16 or more): under load the young generation
# stays small, and RSS after load fell from 1.7× to 1.1× a bare node:http server's, for the same
# CPU per event (`npm run bench`, which starts the servers with these flags).
ENTRYPOINT ["node", "--max-semi-space-size=4", "/app/dist/handler/servo.cjs"]
CMD ["serve"]
