-- Argo CD health check for helios.dev/AnomalyPipeline.
-- Reads only what the operator writes: status.observedGeneration and the conditions
-- Ready (the one summary, never driven by runtime signals) and Suspended.
--   Suspended=True                          -> Suspended
--   no status / observedGeneration behind   -> Progressing
--   Ready=True for the current generation   -> Healthy
--   Ready=False                             -> Degraded, with Ready's reason and message
--   Ready=Unknown or missing                -> Progressing
local hs = {}

local function condition(obj, kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  return reason
end

local generation = obj.metadata and obj.metadata.generation
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local suspended = condition(obj, "Suspended")
if suspended ~= nil and suspended.status == "True" then
  hs.status = "Suspended"
  hs.message = describe(suspended)
  if hs.message == "" then
    hs.message = "Suspended"
  end
  return hs
end

local ready = condition(obj, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Ready is for generation " .. tostring(ready.observedGeneration) ..
    ", waiting for generation " .. tostring(generation)
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
hs.status = "Progressing"
hs.message = describe(ready)
if hs.message == "" then
  hs.message = "Ready is Unknown"
end
return hs
