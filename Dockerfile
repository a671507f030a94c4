# servo-k8s-multijob: one image for Knative Serving and OpenFaaS (lang: dockerfile).

# Build stage: compile the TypeScript with the dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY handler ./handler
RUN npm run build

# Runtime stage: production dependencies and the compiled handler only, as a non-root user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/handler ./dist/handler
USER node
EXPOSE 8080
# The command is the argument: `serve` (the function) by default, `webhook` for the admission webhook.
ENTRYPOINT ["node", "dist/handler/cli.js"]
CMD ["serve"]
